"""Condition kinds: what a cell conditions on, turned into tensors the model consumes.

`label` and `keyword` train on class indices (keyword adds text -> class for
sampling); `text` trains on CLIP embeddings of captions (see clip_text.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from benchmark.config import CellConfig
from benchmark.data import DatasetBundle
from benchmark.models.condition_source import ConditionSource
from benchmark.registry import Registry


@dataclass
class PreparedConditions:
    source: ConditionSource
    train: Callable[[torch.Generator], torch.Tensor]  # one condition per train image, drawn per epoch
    test: torch.Tensor  # one condition per test image, fixed
    notes: dict = field(default_factory=dict)  # provenance: encoder, whether it is trained, ...


CONDITIONS: Registry[Callable[[CellConfig, DatasetBundle], PreparedConditions]] = Registry("condition")


def _class_conditions(config: CellConfig, bundle: DatasetBundle) -> PreparedConditions:
    labels = bundle.train.labels
    return PreparedConditions(
        source=ConditionSource(num_classes=bundle.num_classes),
        train=lambda generator: labels,
        test=bundle.test.labels,
    )


CONDITIONS.register("label")(_class_conditions)
CONDITIONS.register("keyword")(_class_conditions)


def prepare_conditions(config: CellConfig, bundle: DatasetBundle) -> PreparedConditions:
    return CONDITIONS[config.condition](config, bundle)

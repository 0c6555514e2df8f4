"""Condition kinds: what a cell conditions on, turned into tensors the model consumes.

`label` and `keyword` train on class indices (keyword adds text -> class for
sampling); `text` trains on CLIP embeddings of captions (see clip_text.py);
`image` on the visible part of each image under an image task (image_tasks.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from benchmark.config import CellConfig
from benchmark.data import DatasetBundle
from benchmark.models.condition_source import ConditionSource
from benchmark.registry import CONDITIONS
from benchmark.seeding import stream_generator


@dataclass
class PreparedConditions:
    source: ConditionSource
    train: Callable[[torch.Generator], torch.Tensor]  # one condition per train image, drawn per epoch
    test: torch.Tensor  # one condition per test image, fixed
    notes: dict = field(default_factory=dict)  # provenance: encoder, whether it is trained, ...


def _class_conditions(config: CellConfig, bundle: DatasetBundle) -> PreparedConditions:
    labels = bundle.train.labels
    return PreparedConditions(
        source=ConditionSource(num_classes=bundle.num_classes),
        train=lambda generator: labels,
        test=bundle.test.labels,
    )


_class_conditions.ignores = ("text_encoder", "text_normalize")  # cell fields class conditions do not use
_class_conditions.class_indices = True  # the model is given a class index (what models.cvae.Autoencoder reads)
CONDITIONS.register("label")(_class_conditions)
CONDITIONS.register("keyword")(_class_conditions)


@CONDITIONS.register("text")
def _text_conditions(config: CellConfig, bundle: DatasetBundle) -> PreparedConditions:
    """Caption embeddings: training draws one of each image's captions per epoch; tests use the first."""
    from benchmark.conditions.clip_text import text_encoder

    encoder = text_encoder(config.text_encoder, config.text_normalize)
    captions = bundle.train.captions
    counts = torch.tensor([len(c) for c in captions])
    offsets = torch.cumsum(counts, 0) - counts
    train_embeddings = encoder.embed([c for caps in captions for c in caps])
    test_embeddings = encoder.embed([caps[0] for caps in bundle.test.captions])

    def draw(generator: torch.Generator) -> torch.Tensor:
        choice = (torch.rand(len(counts), generator=generator) * counts).long()
        return train_embeddings[offsets + choice]

    notes = {"text_encoder": config.text_encoder, "trained": encoder.trained}
    if not encoder.trained:
        notes["warnings"] = [
            f"The text encoder ({config.text_encoder}) is untrained: its weights are random, so captions "
            "are encoded by a fixed random network, not by CLIP's learned text features."
        ]
    return PreparedConditions(
        source=ConditionSource(vector_dim=train_embeddings.shape[1]),
        train=draw,
        test=test_embeddings,
        notes=notes,
    )


@CONDITIONS.register("image")
def _image_conditions(config: CellConfig, bundle: DatasetBundle) -> PreparedConditions:
    """Each image's visible input and target mask under the cell's task, fixed per image: training boxes
    drawn from the cell's seed, test boxes from seed 0 (the same test task for every cell)."""
    from benchmark.conditions.image_tasks import task_condition
    from benchmark.models.backbones import BACKBONES

    train_gen = stream_generator(config.seed, "task")
    train = task_condition(config.task, bundle.train.images, train_gen)
    test = task_condition(config.task, bundle.test.images, torch.Generator().manual_seed(0))
    return PreparedConditions(
        source=ConditionSource(image_shape=tuple(test.shape[1:]), flat=BACKBONES[config.backbone].flat_input),
        train=lambda generator: train,
        test=test,
        notes={"task": config.task},
    )


_image_conditions.ignores = ("text_encoder", "text_normalize")


def prepare_conditions(config: CellConfig, bundle: DatasetBundle) -> PreparedConditions:
    return CONDITIONS[config.condition](config, bundle)

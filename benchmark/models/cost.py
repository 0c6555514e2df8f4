"""What a model costs: its parameters and the floating-point work of one training step per image."""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from benchmark.config import CellConfig
from benchmark.models.condition_source import ConditionSource
from benchmark.models.cvae import build_model
from benchmark.models.loss import cvae_loss
from benchmark.registry import DATASETS


def parameter_count(model: nn.Module) -> int:
    return sum(math.prod(p.shape) for p in model.parameters())


def parameter_count_of(config: CellConfig) -> int:
    """Parameters of a cell's model, counted on the meta device (nothing is allocated).

    A class data set's classes come from its registration; a text condition is taken as 512 wide (the CLIP
    towers in use)."""
    return _count(config.model_copy(update={"seed": 0, "beta": 1.0, "lr": 1e-3, "epochs": 1}))


@functools.lru_cache(maxsize=4096)
def _count(config: CellConfig) -> int:
    entry = DATASETS[config.dataset]
    source = ConditionSource(vector_dim=512) if entry.classes is None else ConditionSource(num_classes=entry.classes)
    with torch.device("meta"):
        model = build_model(config, source)
    return parameter_count(model)


def training_flops_per_image(model: nn.Module, x: torch.Tensor, c: torch.Tensor, recon_loss: str) -> float:
    """FLOPs of a forward and backward pass (torch.utils.flop_counter: matmuls and convolutions), per image.

    Gradients are dropped afterwards: the model is left as it was."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.enable_grad(), FlopCounterMode(display=False) as counter:
        logits, kl = model(x, c, generator=torch.Generator(device=x.device).manual_seed(0))
        cvae_loss(logits, x, kl, recon_loss, 1.0).total.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(x)

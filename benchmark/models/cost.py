"""What a model costs: its parameters and the floating-point work of one training step per image."""

from __future__ import annotations

import math

import torch
from torch import nn

from benchmark.models.loss import cvae_loss


def parameter_count(model: nn.Module) -> int:
    return sum(math.prod(p.shape) for p in model.parameters())


def training_flops_per_image(model: nn.Module, x: torch.Tensor, c: torch.Tensor, recon_loss: str) -> float:
    """FLOPs of a forward and backward pass (torch.utils.flop_counter: matmuls and convolutions), per image.

    Gradients are dropped afterwards: the model is left as it was."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.enable_grad(), FlopCounterMode(display=False) as counter:
        logits, kl = model(x, c, generator=torch.Generator(device=x.device).manual_seed(0))
        cvae_loss(logits, x, kl, recon_loss, 1.0).total.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(x)

"""Every image grid a cell is drawn as: reconstructions, samples per class, completions of image tasks."""

from __future__ import annotations

import torch

from benchmark.conditions.image_tasks import target_of, visible_of

HIDDEN_SHADE = 0.5  # how hidden pixels of a visible input are drawn


def completion_grid(model, x: torch.Tensor, c: torch.Tensor, generator, completions: int) -> torch.Tensor:
    """Rows for an image task: the visible inputs (hidden pixels grey), `completions` sampled completions of
    each, and the truth; (rows * B, C, H, W)."""
    mask = target_of(c)
    shown = visible_of(c) * (1 - mask) + HIDDEN_SHADE * mask
    return torch.cat([shown, *(model.sample(c, generator) for _ in range(completions)), x])

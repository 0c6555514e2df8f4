"""Completion metrics of image tasks: how N sampled completions of each visible input compare with the
truth on the target pixels, and how much they differ from each other.

Every quantity is per target pixel (the mask of the task), so tasks with more hidden pixels are not
penalised for their size: errors are mean squared errors over target pixels and channels, in [0, 1]^2.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmark.metrics.reconstruction import ssim_per_image


def target_mse(prediction: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per image: mean squared error over its target pixels (and channels), (..., B)."""
    counted = mask.expand_as(x).flatten(-3).sum(-1)
    return ((prediction - x).pow(2) * mask).flatten(-3).sum(-1) / counted


def diversity(completions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per image: the mean over pairs of its N completions (N, B, C, H, W) of their mean squared difference
    on target pixels (pairs formed explicitly, so equal completions give exactly 0)."""
    first, second = torch.triu_indices(len(completions), len(completions), 1)
    return target_mse(completions[first], completions[second], mask).mean(0)


def completion_scores(completions: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> dict[str, np.ndarray]:
    """Per image, from N completions (N, B, C, H, W) of B images x with target mask (B, 1, H, W)."""
    mean = completions.mean(0)
    errors = target_mse(completions, x, mask)  # (N, B)
    ssims = np.stack([ssim_per_image(x, sample) for sample in completions])  # (N, B)
    return {
        "target_mse_mean": target_mse(mean, x, mask).double().cpu().numpy(),
        "target_mse_best": errors.min(0).values.double().cpu().numpy(),
        "ssim_mean": ssim_per_image(x, mean),
        "ssim_best": ssims.max(0),
        "diversity": diversity(completions, mask).double().cpu().numpy(),
    }

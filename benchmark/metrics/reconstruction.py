"""Reconstruction error between images x and reconstructions x_hat, both in [0, 1], (N, C, H, W)."""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import structural_similarity


def squared_errors(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Per-image sum of squared errors, (N,), in float64."""
    return (x.double() - x_hat.double()).pow(2).flatten(1).sum(1)


def mse_pixel(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    return (squared_errors(x, x_hat).sum() / x.numel()).item()


def sse_image(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    return squared_errors(x, x_hat).mean().item()


def ssim_per_image(x: torch.Tensor, x_hat: torch.Tensor) -> np.ndarray:
    """skimage SSIM of each pair (data_range 1; channels as the channel axis when RGB)."""
    a, b = x.double().cpu().numpy(), x_hat.double().cpu().numpy()
    if a.shape[1] == 1:
        return np.array([structural_similarity(p[0], q[0], data_range=1.0) for p, q in zip(a, b)])
    return np.array([structural_similarity(p, q, data_range=1.0, channel_axis=0) for p, q in zip(a, b)])


def ssim(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    return float(ssim_per_image(x, x_hat).mean())

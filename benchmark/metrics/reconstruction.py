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


# Wang et al. 2004: 11-tap Gaussian window, sigma 1.5, population covariance. skimage's defaults are a
# 7x7 uniform window with the sample covariance; the two differ by up to ~0.09 on 28x28 images.
WANG_2004 = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}


def ssim_per_image(x: torch.Tensor, x_hat: torch.Tensor, window: str = "uniform") -> np.ndarray:
    """SSIM of each pair through skimage (data_range 1; channels as the channel axis when RGB).

    window "uniform": skimage's default 7x7 window; "gaussian": Wang et al. 2004's 11-tap Gaussian."""
    options = {"data_range": 1.0, **(WANG_2004 if window == "gaussian" else {})}
    a, b = x.double().cpu().numpy(), x_hat.double().cpu().numpy()
    if a.shape[1] == 1:
        return np.array([structural_similarity(p[0], q[0], **options) for p, q in zip(a, b)])
    return np.array([structural_similarity(p, q, channel_axis=0, **options) for p, q in zip(a, b)])


def ssim(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    return float(ssim_per_image(x, x_hat).mean())


@torch.no_grad()
def reconstruction_scores(model, batches) -> dict[str, float]:
    """The reconstruction metrics of (x, c) batches through the model (decoder mean at z = mu(x, c)):
    sse_image and both SSIMs as means over images, mse_pixel over every pixel. The evaluation stage and the
    learning curve both measure with this."""
    sse, uniform, gaussian, pixels = [], [], [], 0
    for x, c in batches:
        x_hat = model.reconstruct(x, c)
        sse.append(squared_errors(x, x_hat).cpu())
        uniform.append(ssim_per_image(x, x_hat))
        gaussian.append(ssim_per_image(x, x_hat, window="gaussian"))
        pixels += x.numel()
    sse_all = torch.cat(sse)
    return {
        "mse_pixel": (sse_all.sum() / pixels).item(),
        "sse_image": sse_all.mean().item(),
        "ssim": float(np.concatenate(uniform).mean()),
        "ssim_gaussian": float(np.concatenate(gaussian).mean()),
    }

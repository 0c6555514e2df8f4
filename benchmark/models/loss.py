"""The CVAE loss: per-image reconstruction (summed over pixels) + beta * KL, averaged over the batch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F


def reconstruction_per_image(logits: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """bce: -log p(x|z) of a Bernoulli decoder; mse: sum of squared errors of the Gaussian mean."""
    if kind == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    else:
        per_pixel = (torch.sigmoid(logits) - x) ** 2
    return per_pixel.flatten(1).sum(1)


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) of each latent dimension, per image: (B, latent_dim)."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


@dataclass
class LossTerms:
    total: torch.Tensor  # what is minimised: mean over the batch of recon + beta * kl
    recon: torch.Tensor  # mean per image
    kl: torch.Tensor  # mean per image


def cvae_loss(logits, x, mu, logvar, kind: str, beta: float) -> LossTerms:
    recon = reconstruction_per_image(logits, x, kind).mean()
    kl = kl_per_dimension(mu, logvar).sum(1).mean()
    return LossTerms(total=recon + beta * kl, recon=recon, kl=kl)


def kl_weight(beta: float, epoch: int, warmup_epochs: int) -> float:
    """Linear KL warm-up: beta * (epoch + 1) / warmup over the first warmup epochs (0-based epoch)."""
    if warmup_epochs <= 0:
        return beta
    return beta * min(1.0, (epoch + 1) / warmup_epochs)

"""The CVAE loss: per-image reconstruction (summed over pixels) + beta * KL, averaged over the batch."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

SMALL_LOGIT = 1e-3  # below it the continuous Bernoulli's normaliser is taken from its Taylor series


def cbernoulli_log_normalizer(logits: torch.Tensor) -> torch.Tensor:
    """log C(lambda) of the continuous Bernoulli (Loaiza-Ganem & Cunningham 2019), lambda = sigmoid(logits).

    C = 2 atanh(1 - 2 lambda) / (1 - 2 lambda), which in logits is l / tanh(l / 2): no cancellation near
    lambda = 1/2 (l = 0, where C = 2) once the series log 2 + l^2/12 - 7 l^4/1440 takes over there."""
    small = logits.abs() < SMALL_LOGIT
    safe = torch.where(small, torch.ones_like(logits), logits)
    exact = torch.log(safe.abs()) - torch.log(torch.tanh(safe.abs() / 2))
    l2 = logits * logits
    series = math.log(2.0) + l2 / 12 - 7 * l2 * l2 / 1440
    return torch.where(small, series, exact)


def reconstruction_per_image(logits: torch.Tensor, x: torch.Tensor, kind: str, mask=None) -> torch.Tensor:
    """-log p(x|z) per image, summed over pixels (those where `mask` is 1, when given: an image task's
    target). bce: Bernoulli decoder (a density of binary x only); cbernoulli: continuous Bernoulli, a
    normalised density of x in [0, 1]; mse: the sum of squared errors of the sigmoid mean (not a log density)."""
    if kind in ("bce", "cbernoulli"):
        per_pixel = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        if kind == "cbernoulli":
            per_pixel = per_pixel - cbernoulli_log_normalizer(logits)
    else:
        per_pixel = (torch.sigmoid(logits) - x) ** 2
    if mask is not None:
        per_pixel = per_pixel * mask
    return per_pixel.flatten(1).sum(1)


def decoder_mean(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """The decoder's mean image: sigmoid(logits), or for the continuous Bernoulli its own mean,
    lambda / (2 lambda - 1) + 1 / (2 atanh(1 - 2 lambda)), in logits 1 / (1 - e^-l) - 1 / l
    (the series 1/2 + l/12 near l = 0)."""
    if kind != "cbernoulli":
        return torch.sigmoid(logits)
    small = logits.abs() < SMALL_LOGIT
    safe = torch.where(small, torch.ones_like(logits), logits)
    exact = 1 / (-torch.expm1(-safe)) - 1 / safe
    return torch.where(small, 0.5 + logits / 12, exact).clamp(0, 1)


@dataclass
class LossTerms:
    total: torch.Tensor  # what is minimised: mean over the batch of recon + beta * kl
    recon: torch.Tensor  # mean per image
    kl: torch.Tensor  # mean per image


def cvae_loss(logits, x, kl_per_dim, kind: str, beta: float, mask=None) -> LossTerms:
    """kl_per_dim: KL(q(z|x,c) || the cell's prior) of each image and latent dimension, (B, D); mask: the
    pixels the reconstruction term counts (an image task's target), None for all."""
    recon = reconstruction_per_image(logits, x, kind, mask).mean()
    kl = kl_per_dim.sum(1).mean()
    return LossTerms(total=recon + beta * kl, recon=recon, kl=kl)


def kl_weight(beta: float, epoch: int, warmup_epochs: int) -> float:
    """Linear KL warm-up: beta * (epoch + 1) / warmup over the first warmup epochs (0-based epoch)."""
    if warmup_epochs <= 0:
        return beta
    return beta * min(1.0, (epoch + 1) / warmup_epochs)


def likelihood_case(config) -> tuple[bool, str]:
    """Whether the decoder is a normalised density of the data as stored, and the sentence that says so."""
    from benchmark.registry import MODELS

    if not MODELS[config.model].has_density:
        return False, (
            f"model {config.model}: a deterministic code has no density over z, so p(x|c) is not defined and "
            "no likelihood is reported"
        )
    if config.recon_loss == "bce" and config.binarize != "none":
        return True, (
            f"binarised data ({config.binarize}, fixed test draw seed {config.binarize_seed}), Bernoulli decoder: "
            "a normalised "
            "likelihood; reconstruction metrics and samples are measured against the binarised test images"
        )
    if config.recon_loss == "cbernoulli":
        return True, "grey data in [0, 1], continuous Bernoulli decoder: a normalised density"
    if config.recon_loss == "bce":
        return False, (
            "grey pixels with a Bernoulli decoder: not a normalised density of the data (Loaiza-Ganem & "
            "Cunningham 2019), so no likelihood is reported; use binarize or recon_loss cbernoulli"
        )
    return False, "recon_loss mse: the squared error is not a log density, so no likelihood is reported"

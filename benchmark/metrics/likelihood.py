"""Likelihood and latent health: importance-weighted NLL, per-dimension KL, active units."""

from __future__ import annotations

import math

import torch

from benchmark.models.loss import kl_per_dimension, reconstruction_per_image


def _log_normal(z, mu, logvar):
    return (-0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) / logvar.exp())).sum(-1)


@torch.no_grad()
def log_weights(model, x, c, k: int, generator: torch.Generator, chunk: int = 50) -> torch.Tensor:
    """log p(x|z_j,c) + log p(z_j) - log q(z_j|x,c), z_j ~ q(z|x,c), j < k: (k, B); Bernoulli decoder."""
    mu, logvar = model.encode(x, c)
    weights = []
    for start in range(0, k, chunk):
        n = min(chunk, k - start)
        eps = torch.randn((n, *mu.shape), generator=generator, device=mu.device)
        z = mu + (0.5 * logvar).exp() * eps  # (n, B, D)
        logits = model.decode_logits(z.flatten(0, 1), c.repeat(n, *[1] * (c.dim() - 1)))
        log_px = -reconstruction_per_image(logits, x.repeat(n, 1, 1, 1), "bce").view(n, -1)
        weights.append(log_px + _log_normal(z, torch.zeros_like(z), torch.zeros_like(z)) - _log_normal(z, mu, logvar))
    return torch.cat(weights)


def iw_nll(weights: torch.Tensor) -> torch.Tensor:
    """-log p(x|c) per image: -(logsumexp_j w_j - log k). Never above the -ELBO of the same samples."""
    return -(torch.logsumexp(weights.double(), 0) - math.log(len(weights)))


def negative_elbo(weights: torch.Tensor) -> torch.Tensor:
    """Monte-Carlo -ELBO (beta = 1) per image from the same k samples: -mean_j w_j."""
    return -weights.double().mean(0)


@torch.no_grad()
def latent_health(model, x, c, threshold: float = 0.01) -> dict:
    mu, logvar = model.encode(x, c)
    kl = kl_per_dimension(mu, logvar).mean(0)
    activity = mu.double().var(0)
    return {
        "kl_per_dim": [round(v, 6) for v in kl.double().tolist()],
        "active_units": int((activity > threshold).sum().item()),
    }

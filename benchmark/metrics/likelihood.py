"""Likelihood and latent health: importance-weighted NLL with its standard errors, the class-marginal
likelihood and what the label is worth, per-dimension KL, active units.

Importance sampling with q(z|x,c) as proposal: log p(x|c) ~ logsumexp_j w_j - log k, w_j = log p(x|z_j,c)
+ log p(z_j|c) - log q(z_j|x,c), p(z|c) the cell's prior (N(0, I) unless it learns one). Images go in
batches and samples in chunks, with running sums, so memory
stays bounded for any k (5,000 is the literature's scale) and any number of test images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from benchmark.metrics.calibration import expected_calibration_error, reliability
from benchmark.models.loss import reconstruction_per_image


def _log_normal(z, mu, logvar):
    """log N(z; mu, e^logvar) summed over dimensions, in float64: a prior whose variance underflows float32
    (e^-125) gives a large finite density there, not 0 / 0."""
    z, mu, logvar = z.double(), mu.double(), logvar.double()
    return (-0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) * torch.exp(-logvar))).sum(-1)


def _log_proposal(eps, logvar):
    """log q(z|x,c) at z = mu + sigma * eps, from eps itself: exact even where sigma underflows and z == mu."""
    return (-0.5 * (math.log(2 * math.pi) + logvar.double() + eps.double().pow(2))).sum(-1)


@torch.no_grad()
def log_weights(model, x, c, k: int, generator: torch.Generator, recon_loss: str = "bce", chunk: int = 50):
    """The k importance log-weights of each image, (k, B). For small k; `importance_estimates` streams."""
    return torch.cat(list(_weight_chunks(model, x, c, k, generator, recon_loss, chunk)))


def _weight_chunks(model, x, c, k, generator, recon_loss, chunk):
    mu, logvar = model.encode(x, c)
    prior_mu, prior_logvar = model.prior(c)
    mask = model.target_mask(c)  # image tasks: log p(target pixels | visible ones)
    for start in range(0, k, chunk):
        n = min(chunk, k - start)
        eps = torch.randn((n, *mu.shape), generator=generator, device=mu.device)
        z = mu + (0.5 * logvar).exp() * eps  # (n, B, D)
        repeated_c = c.repeat(n, *[1] * (c.dim() - 1))
        logits = model.decode_logits(z.flatten(0, 1), repeated_c)
        masks = None if mask is None else mask.repeat(n, 1, 1, 1)
        log_px = -reconstruction_per_image(logits, x.repeat(n, 1, 1, 1), recon_loss, masks).view(n, -1)
        yield log_px.double() + _log_normal(z, prior_mu, prior_logvar) - _log_proposal(eps, logvar)


@dataclass
class ImportanceEstimate:
    """Per image: the IW estimate of log p(x|c), the mean log-weight (-ELBO's Monte-Carlo term) and the
    delta-method variance of the log estimate, Var[log p_hat] ~ (k * sum w_j^2 / (sum w_j)^2 - 1) / k."""

    log_px: torch.Tensor  # (B,)
    mean_weight: torch.Tensor  # (B,)
    log_var: torch.Tensor  # (B,)


@torch.no_grad()
def importance_estimate(model, x, c, k, generator, recon_loss: str = "bce", chunk: int = 50) -> ImportanceEstimate:
    """Streaming over chunks of samples: running logsumexp of w and of 2w, and the sum of w."""
    lse = lse2 = None
    total = torch.zeros(len(x), dtype=torch.float64, device=x.device)
    for w in _weight_chunks(model, x, c, k, generator, recon_loss, chunk):
        part, part2 = torch.logsumexp(w, 0), torch.logsumexp(2 * w, 0)
        lse = part if lse is None else torch.logaddexp(lse, part)
        lse2 = part2 if lse2 is None else torch.logaddexp(lse2, part2)
        total += w.sum(0)
    relative = (math.log(k) + lse2 - 2 * lse).exp() - 1  # k * sum w^2 / (sum w)^2 - 1
    return ImportanceEstimate(lse - math.log(k), total / k, relative.clamp(min=0) / k)


def batched_estimate(model, x, c, k: int, generator, recon_loss: str, batch_size: int) -> ImportanceEstimate:
    """importance_estimate over batches of x from one generator (independent draws for every image), its
    fields concatenated: the one estimator of every importance-weighted figure."""
    parts = [
        importance_estimate(model, xb, cb, k, generator, recon_loss)
        for xb, cb in zip(x.split(batch_size), c.split(batch_size))
    ]
    return ImportanceEstimate(*(torch.cat([getattr(p, f.name) for p in parts]) for f in fields(ImportanceEstimate)))


def iw_nll(weights: torch.Tensor) -> torch.Tensor:
    """-log p(x|c) per image: -(logsumexp_j w_j - log k). Never above the -ELBO of the same samples."""
    return -(torch.logsumexp(weights.double(), 0) - math.log(len(weights)))


def negative_elbo(weights: torch.Tensor) -> torch.Tensor:
    """Monte-Carlo -ELBO (beta = 1) per image from the same k samples: -mean_j w_j."""
    return -weights.double().mean(0)


def standard_error(values: torch.Tensor) -> float:
    """Of a mean over images: their spread / sqrt(n)."""
    return (values.double().std(unbiased=True) / math.sqrt(len(values))).item() if len(values) > 1 else float("nan")


def log_px_per_class(model, x, classes: int, k: int, new_generator, recon_loss: str, batch_size: int = 500):
    """log p(x|y) of every image under every class y, (K, N). Each class gets a fresh generator from
    `new_generator`, so every y sees the same noise (common random numbers): a model that ignores the
    label gives exactly equal rows, and differences between rows are the label's, not sampling noise."""
    rows = []
    for y in range(classes):
        labels = torch.full((len(x),), y, dtype=torch.long, device=x.device)
        rows.append(batched_estimate(model, x, labels, k, new_generator(), recon_loss, batch_size).log_px)
    return torch.stack(rows)


def label_information(log_px_given_y: torch.Tensor, labels: torch.Tensor, class_names, bins: int) -> dict:
    """From log p(x|y) of every class y, (K, N), and the true labels: the class-marginal NLL under a
    uniform prior, the information taken from the label (<= ln K for every image, as log p(x|y_true) <=
    logsumexp_y log p(x|y)), which is ln K minus the log-loss of the generative classifier
    p(y|x) = softmax_y log p(x|y), that classifier's accuracy (a tie shared among the tied classes), overall
    and per class, and its calibration (`bins` reliability bins)."""
    log_px_given_y = log_px_given_y.double().cpu()
    k, n = log_px_given_y.shape
    log_marginal = torch.logsumexp(log_px_given_y, 0) - math.log(k)
    true = log_px_given_y[labels, torch.arange(n)]
    best = log_px_given_y == log_px_given_y.max(0).values
    hit = best[labels, torch.arange(n)].double() / best.sum(0)
    information = (true - log_marginal).mean().item()
    rows = reliability(torch.softmax(log_px_given_y, 0).T, labels, bins)
    return {
        "nll_marginal": -log_marginal.mean().item(),
        "label_information": information,
        "label_information_bound": math.log(k),
        "generative_log_loss": math.log(k) - information,
        "generative_accuracy": hit.mean().item(),
        "generative_accuracy_per_class": {
            name: round(hit[labels == y].mean().item(), 6) for y, name in enumerate(class_names) if (labels == y).any()
        },
        "generative_ece": expected_calibration_error(rows),
        "generative_reliability": [[round(v, 6) for v in row[:2]] + [row[2]] for row in rows],
    }


@torch.no_grad()
def latent_health(model, x, c, threshold: float = 0.01) -> dict:
    mu, logvar = model.encode(x, c)
    kl = model.kl(mu, logvar, c).mean(0)
    activity = mu.double().var(0)
    return {
        "kl_per_dim": [round(v, 6) for v in kl.double().tolist()],
        "active_units": int((activity > threshold).sum().item()),
    }

"""Importance-weighted likelihood estimates and latent health."""

from __future__ import annotations

import math

import torch

from benchmark.metrics import likelihood
from benchmark.metrics.context import EvalContext
from benchmark.metrics.dependence import (
    DENSITY,
    PER_PIXEL_DENSITY,
    READS_CONDITION,
)
from benchmark.metrics.registry import METRIC_GROUPS, MetricSpec, metric_group
from benchmark.models.loss import likelihood_case


@metric_group(
    "likelihood",
    2,
    MetricSpec(
        "nll_iw",
        "importance-weighted estimate of -log p(x|c) in nats per image (k = nll_k samples from q(z|x,c), "
        "the cell's prior p(z) or p(z|c), nll_size test images), reported only where the decoder is a "
        "normalised density of the data",
        "lower",
        headline=True,
        tolerance=(0.002, 0.0),
        unit="nats",
        depends_on=(*DENSITY, READS_CONDITION),
        normalised="nll_marginal",
    ),
    MetricSpec("nll_iw_se", "standard error of nll_iw over test images (their spread / sqrt(n))", unit="nats"),
    MetricSpec(
        "nll_iw_mc_se",
        "Monte-Carlo standard error of nll_iw from the importance weights themselves (delta method: "
        "Var log p_hat ~ (k sum w^2 / (sum w)^2 - 1) / k per image)",
        unit="nats",
    ),
    MetricSpec(
        "neg_elbo",
        "negative ELBO (beta = 1) in nats per image from the same samples",
        "lower",
        unit="nats",
        depends_on=(*DENSITY, READS_CONDITION),
        normalised="bits_per_dim",
    ),
    MetricSpec(
        "bits_per_dim",
        "nll_iw / (D ln 2); for the continuous Bernoulli on 8-bit data (nll_iw + D ln 256) / (D ln 2), the "
        "density at the pixel values rescaled to [0, 256), without dequantisation",
        "lower",
        depends_on=(*PER_PIXEL_DENSITY, READS_CONDITION),
    ),
    MetricSpec(
        "kl_per_dim",
        "mean over test images of KL(q(z_i|x,c) || p(z_i)) for each latent dimension i, against the cell's "
        "prior (N(0, 1), or p(z_i|c) when it learns one)",
    ),
    MetricSpec(
        "kl",
        "sum of kl_per_dim over the latent dimensions: the mean over test images of KL(q(z|x,c) || the cell's "
        "prior) in nats per image, the rate the beta term weighs (read off kl_per_dim, as stored to 6 decimals)",
        unit="nats",
        derive=lambda metrics: _total(metrics.get("kl_per_dim")),
    ),
    MetricSpec(
        "active_units",
        "number of latent dimensions whose Var_x(E_q[z_i]) exceeds 0.01",
        "higher",
        tolerance=(0.0, 1.0),
    ),
)
def likelihood_metrics(ctx: EvalContext) -> dict:
    config = ctx.trained.config
    x, c = ctx.likelihood_images()
    density, case = likelihood_case(config)
    ctx.notes["likelihood"] = case
    if hasattr(ctx.model, "neg_elbo"):  # a one-hot posterior (vqvae): its ELBO, no importance sampling
        return _one_hot_posterior(ctx, x, c, density, case)
    metrics = likelihood.latent_health(ctx.model, x, c)
    if not ctx.model.has_density:  # no posterior or prior to take a KL between (the autoencoder)
        del metrics["kl_per_dim"]
        ctx.unavailable(["kl_per_dim"], case)
    if not density:
        estimated = [name for name in METRIC_GROUPS["likelihood"].names if name not in metrics]
        return {**metrics, **ctx.unavailable(estimated, case)}
    generator = ctx.generator("likelihood")  # one stream over all batches: independent draws per image
    estimate = likelihood.batched_estimate(
        ctx.model, x, c, ctx.eval.nll_k, generator, config.recon_loss, ctx.eval.batch_size
    )
    nll = -estimate.log_px
    variance = estimate.log_var
    pixels = x[0].numel()
    shift = pixels * math.log(256) if config.recon_loss == "cbernoulli" else 0.0
    return {
        **metrics,
        "nll_iw": nll.mean().item(),
        "nll_iw_se": likelihood.standard_error(nll),
        "nll_iw_mc_se": (variance.sum().sqrt() / len(nll)).item(),
        "neg_elbo": -estimate.mean_weight.mean().item(),
        "bits_per_dim": (nll.mean().item() + shift) / (pixels * math.log(2)),
    }


def _total(values) -> float | None:
    return float(sum(values)) if isinstance(values, list) and values else None


def _one_hot_posterior(ctx: EvalContext, x, c, density: bool, case: str) -> dict:
    """The VQ-VAE: -log p(x|k(x)) - log p(k(x)|c), the negative ELBO of its one-hot posterior (an upper bound
    on -log p(x|c)); importance sampling a one-hot posterior returns that same number, so nll_iw and its
    normalisation are not reported, and a discrete code has no per-dimension KL."""
    names = METRIC_GROUPS["likelihood"].names
    one_hot = ctx.unavailable(
        [n for n in names if n != "neg_elbo"],
        f"model {ctx.trained.config.model}: a one-hot posterior (one code grid per image), so the "
        "importance-weighted estimate equals neg_elbo and there is no KL per latent dimension; see neg_elbo "
        "and the codebook metrics",
    )
    if not density:
        return {**one_hot, **ctx.unavailable(["neg_elbo"], case)}
    ctx.notes["likelihood"] = f"{case}; neg_elbo here is -log p(x|k(x)) - log p(k(x)|c) of the code grid k(x)"
    bound = torch.cat([ctx.model.neg_elbo(x[p], c[p]) for p in torch.arange(len(x)).split(ctx.eval.batch_size)])
    return {**one_hot, "neg_elbo": bound.mean().item()}

"""Image tasks: completions of the target pixels and the conditional cross-entropy."""

from __future__ import annotations

import numpy as np
import torch

from benchmark.metrics import completion, likelihood
from benchmark.metrics.context import COMPLETIONS, EvalContext
from benchmark.metrics.dependence import (
    GIVEN_PIXELS,
    PER_PIXEL_DENSITY,
    RESAMPLED_PIXELS,
    RESAMPLED_WINDOW,
    TASK_SUM,
)
from benchmark.metrics.registry import METRIC_GROUPS, MetricSpec, metric_group


@metric_group(
    "completion",
    3,
    MetricSpec(
        "target_xent_iw",
        "image tasks, Bernoulli decoder: importance-weighted estimate (nll_k samples from q, the cell's prior, "
        "nll_size test images) of -log p(target pixels | visible pixels) in nats per image. On grey pixels "
        "this is a cross-entropy, not a normalised likelihood (Loaiza-Ganem & Cunningham 2019), the quantity "
        "Pyro's CVAE tutorial tables as -CLL; on binarised data it is the negative conditional log-likelihood",
        "lower",
        headline=True,
        unit="nats",
        depends_on=TASK_SUM,
        normalised="target_xent_per_pixel",
    ),
    MetricSpec(
        "target_xent_elbo",
        "the negative ELBO from the same samples: the bound Pyro's tutorial estimates for its CVAE row "
        "(Trace_ELBO); exact for the deterministic baseline, whose weights are all equal",
        "lower",
        unit="nats",
        depends_on=TASK_SUM,
        normalised="target_xent_per_pixel",
    ),
    MetricSpec(
        "target_xent_per_pixel",
        "target_xent_iw of each image divided by its number of target pixels (times channels), mean over the "
        "same images: nats per target pixel, the form comparable between tasks",
        "lower",
        unit="nats",
        depends_on=PER_PIXEL_DENSITY,
    ),
    MetricSpec(
        "target_mse_mean",
        f"image tasks: mean squared error over target pixels of the mean of {COMPLETIONS} sampled completions, "
        "mean over recon_size test images",
        "lower",
        headline=True,
        depends_on=RESAMPLED_PIXELS,
    ),
    MetricSpec(
        "target_mse_best",
        f"the same error for the best (lowest-error) of the {COMPLETIONS} completions of each image",
        "lower",
        depends_on=RESAMPLED_PIXELS,
    ),
    MetricSpec(
        "ssim_mean",
        "SSIM (skimage default window) of the completed image from the mean completion, visible pixels as given",
        "higher",
        depends_on=(*GIVEN_PIXELS, *RESAMPLED_WINDOW),
    ),
    MetricSpec(
        "ssim_best",
        f"SSIM of the best (highest-SSIM) of the {COMPLETIONS} completions",
        "higher",
        depends_on=(*GIVEN_PIXELS, *RESAMPLED_WINDOW),
    ),
    MetricSpec(
        "diversity",
        f"mean over test images and pairs of their {COMPLETIONS} completions of the mean squared difference on "
        "target pixels: how different the sampled completions are (0 for a deterministic model)",
        "higher",
        headline=True,
        depends_on=RESAMPLED_PIXELS,
    ),
)
def completion_metrics(ctx: EvalContext) -> dict:
    names = list(METRIC_GROUPS["completion"].names)
    if not ctx.model.image_condition:
        return ctx.unavailable(names, "not applicable: the condition is not an image task")
    generator = ctx.generator("completion")
    scores: dict[str, list] = {}
    for x, c in ctx.batches(ctx.recon_index):
        completions = torch.stack([ctx.model.sample(c, generator) for _ in range(COMPLETIONS)])
        for name, values in completion.completion_scores(completions, x, ctx.model.target_mask(c)).items():
            scores.setdefault(name, []).append(values)
    metrics = {name: float(np.concatenate(parts).mean()) for name, parts in scores.items()}
    if ctx.trained.config.recon_loss != "bce":
        return {**metrics, **ctx.unavailable(["target_xent_iw", "target_xent_elbo"], "the decoder is not a Bernoulli")}
    x, c = ctx.likelihood_images()
    generator = ctx.generator("likelihood")
    estimate = likelihood.batched_estimate(ctx.model, x, c, ctx.eval.nll_k, generator, "bce", ctx.eval.batch_size)
    xent = -estimate.log_px
    target_pixels = ctx.model.target_mask(c).sum((1, 2, 3)) * x.shape[1]
    return {
        **metrics,
        "target_xent_iw": xent.mean().item(),
        "target_xent_elbo": -estimate.mean_weight.mean().item(),
        "target_xent_per_pixel": (xent / target_pixels.to(xent)).mean().item(),
    }

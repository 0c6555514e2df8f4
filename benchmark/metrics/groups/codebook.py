"""Codebook health of a vector-quantised code (model vqvae): how many of its vectors the test images use."""

from __future__ import annotations

import torch

from benchmark.metrics.context import EvalContext
from benchmark.metrics.registry import MetricSpec, metric_group


@metric_group(
    "codebook",
    1,
    MetricSpec(
        "codebook_perplexity",
        "exp of the entropy of the codebook vectors' frequencies over every position of the recon_size test "
        "images' code grids (codebook_size if all are used equally, 1 if one is used)",
        "higher",
    ),
    MetricSpec(
        "dead_codes",
        "share of the codebook's vectors that no position of those code grids uses",
        "lower",
    ),
)
def codebook_metrics(ctx: EvalContext) -> dict:
    from benchmark.models.vqvae import codebook_usage

    names = ["codebook_perplexity", "dead_codes"]
    if not hasattr(ctx.model, "quantizer"):
        return ctx.unavailable(names, f"model {ctx.trained.config.model} has no codebook")
    with torch.no_grad():
        codes = torch.cat([ctx.model.codes(x, c) for x, c in ctx.batches(ctx.recon_index)])
    perplexity, dead = codebook_usage(codes.cpu(), ctx.model.quantizer.codebook.num_embeddings)
    return {"codebook_perplexity": perplexity, "dead_codes": dead}

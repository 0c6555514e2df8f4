"""What a cell costs: parameters and training FLOPs per image."""

from __future__ import annotations

from benchmark.metrics.context import EvalContext
from benchmark.metrics.registry import MetricSpec, metric_group
from benchmark.models.cost import parameter_count, training_flops_per_image


@metric_group(
    "cost",
    1,
    MetricSpec("parameters", "trainable parameters of the model", headline=True),
    MetricSpec(
        "flops_per_image",
        "floating-point operations of one training step per image, forward and backward "
        "(torch.utils.flop_counter: matmuls and convolutions)",
        headline=True,
    ),
)
def cost_metrics(ctx: EvalContext) -> dict:
    x, c = next(ctx.batches(ctx.recon_index[:16]))
    return {
        "parameters": parameter_count(ctx.model),
        "flops_per_image": training_flops_per_image(ctx.model, x, c, ctx.trained.config.recon_loss),
    }

"""Evaluate a trained cell under the fixed protocol: every registered metric group (metrics/groups/) in
turn, the protocol recorded beside the values.

Generated images are quantised to uint8, as a saved image would be, before any
feature extractor sees them; real images are the test split at the cell's size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from benchmark.drawing import completion_grid, grid_png
from benchmark.metrics.context import EvalContext
from benchmark.metrics.protocol import EvalConfig
from benchmark.metrics.registry import METRIC_GROUPS, protocol_version
from benchmark.training.trainer import TrainedCell


@dataclass
class Evaluation:
    metrics: dict
    images: dict[str, bytes]


def evaluate_cell(
    trained: TrainedCell, eval_config: EvalConfig, data_dir=None, groups: list[str] | None = None
) -> Evaluation:
    """Every metric group (or the named ones) under the current protocol, with the protocol recorded."""
    ctx = EvalContext(trained, eval_config, data_dir)
    trained.model.eval()
    metrics, timing, versions, definitions = {}, {}, {}, {}
    for name in groups or METRIC_GROUPS.names():
        group = METRIC_GROUPS[name]
        start = time.perf_counter()
        values = group.compute(ctx)
        unknown = set(values) - set(group.names)
        if unknown:
            raise RuntimeError(f"metric group {name!r} returned {sorted(unknown)} without a MetricSpec")
        metrics.update(values)
        timing[name] = round(time.perf_counter() - start, 3)
        versions[name] = group.version
        definitions.update({spec.name: spec.definition for spec in group.specs if spec.derive is None})
    settings = eval_config.model_dump(mode="json")
    metrics["protocol"] = {
        "version": protocol_version(settings, versions),
        "eval": settings,
        "groups": versions,
        "definitions": definitions,
        **ctx.notes,
        "conditions": trained.conditions.notes,
    }
    metrics["eval_seconds"] = timing
    return Evaluation(metrics, image_grids(ctx))


def image_grids(ctx: EvalContext, per_row: int = 10) -> dict[str, bytes]:
    """Reconstructions (originals above, reconstructions below) and samples: one row per class, or for an
    image task the visible inputs, five completions of each and the truth."""
    x, c = next(ctx.batches(ctx.recon_index[:per_row]))
    recon = torch.cat([x, ctx.model.reconstruct(x, c)]).cpu()
    gen = ctx.generator("sample")
    classes = ctx.trained.conditions.source.num_classes
    if ctx.model.image_condition:
        samples = completion_grid(ctx.model, x, c, gen, 5).cpu()
    else:
        conds = (
            torch.arange(classes).repeat_interleave(per_row).to(ctx.device)
            if classes
            else ctx.trained.conditions.test[: per_row * 2].to(ctx.device)
        )
        samples = ctx.model.sample(conds, gen).cpu()
    return {
        "reconstructions": grid_png(recon, per_row),
        "samples": grid_png(samples, per_row),
    }

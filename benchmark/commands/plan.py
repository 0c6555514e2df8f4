"""`bench plan`: a grid's cost on this machine before it runs, and the seeds its question needs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from benchmark.commands.common import RESULTS, DataDir, GridFile, Only, Overrides, Results, console, resolve_grid
from benchmark.errors import BenchError

Opt = typer.Option


def plan(
    grid: GridFile = None,
    override: Overrides = [],
    only: Only = [],
    results: Results = RESULTS,
    pilot: Annotated[
        Path | None,
        Opt("--pilot", help="A store holding a pilot run of this grid: its epochs, evaluation time and spread."),
    ] = None,
    effect: Annotated[
        float,
        Opt("--effect", help="Difference to detect, as a share of the metric's mean (0.03: 3%)."),
    ] = 0.03,
    workers: Annotated[int, Opt("--workers", min=1, help="As bench run --workers: threads per cell, wall time.")] = 1,
    data_dir: DataDir = None,
) -> None:
    """Estimate each pending cell's training time from its FLOPs per image and this machine's measured FLOP
    rate; with --pilot, its epochs and evaluation time there, and the seeds the question needs."""
    from benchmark.perf.plan import estimate_cells, pending, seeds_needed, total_seconds
    from benchmark.runner.grid_run import filter_cells
    from benchmark.runner.preflight import check_data_dir, check_store
    from benchmark.runner.process_pool import threads_per_worker
    from benchmark.store import CellStore

    if not 0 < effect <= 1:
        raise BenchError(f"--effect {effect}: a share of the metric's mean, above 0 and at most 1 (0.03 for 3%)")
    spec = resolve_grid(grid, [], override)
    if results.exists() and not results.is_dir():
        raise BenchError(f"--results {results}: is a file, not a cell store")
    pilot_store = check_store(pilot, "--pilot") if pilot is not None else None
    if pilot_store is not None and pilot_store.grid_record(spec.name) is None:
        raise BenchError(
            f"--pilot {pilot}: no run of grid {spec.name!r} there (bench run --grid ... --results {pilot})"
        )
    check_data_dir(data_dir)
    cells = pending(filter_cells(spec.cells, only), CellStore(results))
    if not cells:
        console.print(f"{spec.name}: every selected cell is done in {results}; nothing to plan")
        return
    estimates = estimate_cells(cells, threads_per_worker(workers), pilot_store, spec, data_dir)
    console.print(_estimate_table(spec.name, estimates, workers))
    budget, expected = total_seconds(estimates, use_pilot=False), total_seconds(estimates)
    line = f"{len(cells)} pending cells: training at the epoch budget {_hours(budget)} of cell time"
    if pilot_store is not None:
        line += f"; at the pilot's epochs, with its evaluation time, {_hours(expected)}"
    console.print(line + f"; wall time with --workers {workers}: {_hours(max(budget, expected) / workers)}")
    if pilot_store is not None and spec.spec.question is not None:
        console.print(_seeds_table(seeds_needed(pilot_store, spec, effect), spec, effect))


def _estimate_table(name: str, estimates, workers: int) -> Table:
    table = Table(title=f"{name}: pending cells by model family (threads per cell as --workers {workers})")
    for column in ("backbone", "px", "batch", "cells", "GFLOP/image", "images/epoch", "epochs", "GFLOP/s"):
        table.add_column(column, justify="right")
    table.add_column("train min/cell", justify="right")
    table.add_column("eval s/cell (pilot)", justify="right")
    families: dict[tuple, list] = {}
    for e in estimates:
        c = e.cell.config
        families.setdefault((c.backbone, c.image_size, c.batch_size), []).append(e)
    for (backbone, size, batch), group in families.items():
        first = group[0]
        epochs = f"{first.epochs}" + (f" (pilot {first.pilot_epochs:.0f})" if first.pilot_epochs else "")
        minutes = sum(e.train_seconds() for e in group) / len(group) / 60
        pilot_minutes = (
            f" ({sum(e.train_seconds(e.pilot_epochs) for e in group) / len(group) / 60:.1f})"
            if first.pilot_epochs
            else ""
        )
        table.add_row(
            backbone,
            str(size),
            str(batch),
            str(len(group)),
            f"{sum(e.flops_per_image for e in group) / len(group) / 1e9:.4f}",
            f"{first.train_images:,} + {first.forward_images:,} fwd",
            epochs,
            f"{first.flop_rate / 1e9:.1f}",
            f"{minutes:.1f}{pilot_minutes}",
            "-" if first.pilot_eval_seconds is None else f"{first.pilot_eval_seconds:.0f}",
        )
    return table


def _seeds_table(rows, spec, effect: float) -> Table:
    question = spec.spec.question
    table = Table(
        title=f"Seeds for {question.axis}: a difference of {effect:.1%} of each metric's mean detected with 80% "
        "power in every pair of levels (Holm's first step)"
    )
    for column in ("metric", "pilot mean", "difference", "pairs", "worst spread", "pilot seeds", "seeds needed"):
        table.add_column(column, justify="right")
    for r in rows:
        seeds = "more than 10,000" if r.seeds is None else str(r.seeds)
        table.add_row(
            r.metric,
            f"{r.mean:.4g}",
            f"{r.target:.3g}",
            str(r.pairs),
            f"{r.worst_spread:.3g}",
            str(r.pilot_seeds),
            seeds,
        )
    return table


def _hours(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"

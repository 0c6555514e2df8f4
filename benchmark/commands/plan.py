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
    workers: Annotated[int, Opt("--workers", min=1, help="As bench run --workers: cells at once (wall time).")] = 1,
    threads: Annotated[
        int | None, Opt("--threads", min=1, help="As bench run --threads (default: CPUs / workers).")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Estimate each pending cell's training time from its FLOPs per image and the FLOP rate the trainer
    reaches here on its model family; with --pilot, its epochs and evaluation time there, and the seeds the
    question needs."""
    from benchmark.perf.plan import estimate_cells, pending, seeds_needed, total_seconds
    from benchmark.runner.grid_run import filter_cells
    from benchmark.runner.preflight import check_data, check_store
    from benchmark.runner.process_pool import threads_per_worker
    from benchmark.store import CellStatus, CellStore

    if not 0 < effect <= 1:
        raise BenchError(f"--effect {effect}: a share of the metric's mean, above 0 and at most 1 (0.03 for 3%)")
    spec = resolve_grid(grid, [], override)
    if results.exists() and not results.is_dir():
        raise BenchError(f"--results {results}: is a file, not a cell store")
    pilot_store = check_store(pilot, "--pilot") if pilot is not None else None
    if pilot_store is not None:
        record = pilot_store.grid_record(spec.name)
        if record is None:
            raise BenchError(
                f"--pilot {pilot}: no run of grid {spec.name!r} there (bench run --grid ... --results {pilot})"
            )
        if not any(pilot_store.status(entry["id"]) == CellStatus.DONE for entry in record["cells"]):
            raise BenchError(f"--pilot {pilot}: no cell of grid {spec.name!r} is done there yet")
    cells = pending(filter_cells(spec.cells, only), CellStore(results))
    if not cells:
        console.print(f"{spec.name}: every selected cell is done in {results}; nothing to plan")
        return
    check_data(cells, data_dir)  # data present and intact, before any timing
    threads = threads or threads_per_worker(workers)
    estimates = estimate_cells(cells, threads, pilot_store, spec, data_dir)
    console.print(_estimate_table(spec.name, estimates, threads))
    budget, expected = total_seconds(estimates, use_pilot=False), total_seconds(estimates)
    line = f"{len(cells)} pending cells: training at the epoch budget {_hours(budget)} of cell time"
    if pilot_store is not None:
        line += f"; at the pilot's epochs, with its evaluation time where it had the same protocol, {_hours(expected)}"
    at_once = min(workers, len(cells))
    console.print(line + f"; wall time with --workers {workers}: {_hours(max(budget, expected) / at_once)}")
    if pilot_store is None:
        return
    if spec.spec.question is None:
        console.print(f"{spec.name} asks no question: no seeds to plan")
        return
    console.print(_seeds_table(seeds_needed(pilot_store, spec, effect), spec, effect))


def _estimate_table(name: str, estimates, threads: int) -> Table:
    from benchmark.perf.plan import family

    table = Table(
        title=f"{name}: pending cells by model family ({threads} torch thread{'s' * (threads != 1)} per cell)"
    )
    for column in ("model", "backbone", "px", "batch", "data set", "cells", "GFLOP/image", "images/epoch", "epochs"):
        table.add_column(column, justify="right")
    for column in ("GFLOP/s", "train min/cell", "eval s/cell (pilot)"):
        table.add_column(column, justify="right")
    families: dict[tuple, list] = {}
    for e in estimates:
        families.setdefault(family(e.cell), []).append(e)
    for (model, backbone, size, batch, dataset), group in families.items():
        first = group[0]
        piloted = [e.pilot_epochs for e in group if e.pilot_epochs is not None]
        budgets = sorted({e.epochs for e in group})
        epochs = "/".join(map(str, budgets)) + (f" (pilot {sum(piloted) / len(piloted):.0f})" if piloted else "")
        minutes = sum(e.train_seconds() for e in group) / len(group) / 60
        at_pilot = sum(e.train_seconds(e.pilot_epochs) for e in group) / len(group) / 60
        evals = [e.pilot_eval_seconds for e in group if e.pilot_eval_seconds is not None]
        table.add_row(
            model,
            backbone,
            str(size),
            str(batch),
            dataset,
            str(len(group)),
            f"{sum(e.flops_per_image for e in group) / len(group) / 1e9:.4f}",
            f"{first.train_images:,} + {first.forward_images:,} fwd",
            epochs,
            f"{first.flop_rate / 1e9:.1f}",
            f"{minutes:.1f}" + (f" ({at_pilot:.1f})" if piloted else ""),
            f"{sum(evals) / len(evals):.0f}" if evals else "-",
        )
    return table


def _seeds_table(rows, spec, effect: float) -> Table:
    question = spec.spec.question
    table = Table(
        title=f"Seeds for {question.axis}: a difference of {effect:.1%} of each metric's mean detected with 80% "
        "power in every pair of levels (Holm's first step)"
    )
    for column in ("metric", "pilot mean", "difference", "level pairs", "worst spread", "pilot seeds"):
        table.add_column(column, justify="right")
    table.add_column("seeds needed", justify="right")
    for r in rows:
        seeds = r.note or ("more than 10,000" if r.seeds is None else str(r.seeds))
        spread = "-" if r.worst_spread != r.worst_spread else f"{r.worst_spread:.3g}"
        table.add_row(
            r.metric, f"{r.mean:.4g}", f"{r.target:.3g}", str(r.level_pairs), spread, str(r.pilot_seeds), seeds
        )
    return table


def _hours(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"

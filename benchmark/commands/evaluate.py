"""`bench evaluate`: measure done cells again from their checkpoints under the current protocol."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import Progress as RichProgress

from benchmark.commands.common import (
    PROGRESS_COLUMNS,
    RESULTS,
    DataDir,
    Device,
    GridFile,
    Only,
    Overrides,
    Results,
    console,
    resolve_grid,
)
from benchmark.errors import BenchError
from benchmark.store import CellStatus


def evaluate(
    grid: GridFile = None,
    override: Overrides = [],
    only: Only = [],
    metrics: Annotated[
        str | None, typer.Option("--metrics", help="Comma-separated metrics (or groups) to measure; default all.")
    ] = None,
    stale: Annotated[bool, typer.Option("--stale", help="Only cells measured under an older protocol.")] = False,
    results: Results = RESULTS,
    device: Device = "auto",
    data_dir: DataDir = None,
) -> None:
    """Measure done cells again from their checkpoints under the current protocol; trains nothing."""
    from benchmark.runner.evaluate_stage import evaluate_cells, groups_for, is_stale
    from benchmark.runner.grid_run import filter_cells
    from benchmark.runner.preflight import check_data_dir, check_device, check_store

    spec = resolve_grid(grid, [], override)
    names = None if metrics is None else [m.strip() for m in metrics.split(",") if m.strip()]
    if names == []:
        raise BenchError(f"--metrics {metrics!r}: names no metric; give metric or group names, or leave it out for all")
    store = check_store(results)
    groups_for(names)  # an unknown metric is a user error before anything runs
    device_obj = check_device(device)
    check_data_dir(data_dir)
    selected = filter_cells(spec.cells, only)
    if not any(store.status(c.id) in (CellStatus.DONE, CellStatus.DAMAGED) for c in selected):
        raise BenchError(f"--results {results}: no cell of grid {spec.name} is done there; nothing to measure")
    cells = [c for c in selected if not stale or is_stale(store, c)]
    with RichProgress(*PROGRESS_COLUMNS, console=console) as bars:
        task = bars.add_task("evaluate", total=len(cells))
        summary = evaluate_cells(cells, store, device_obj, data_dir, names, lambda cell: bars.advance(task))
    console.print(
        f"{spec.name}: {len(summary.measured)} measured, {len(summary.not_trained)} not trained yet, "
        f"{len(summary.busy)} busy in another run, {len(summary.damaged)} damaged (store: {results})"
    )
    if summary.no_checkpoint:
        console.print(
            f"{len(summary.no_checkpoint)} done cells have no checkpoint to measure (cells restored from a "
            "published report have none) and keep their metrics",
            soft_wrap=True,
        )
    for cell_id, damage in summary.damaged.items():
        console.print(f"[red]damaged {cell_id}: {damage} (not measured; bench run redoes it)", soft_wrap=True)
    raise typer.Exit(1 if summary.damaged else 0)

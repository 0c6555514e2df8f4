"""`bench status`: done, failed and pending cells of a grid, with their headline metrics."""

from __future__ import annotations

from rich.table import Table

from benchmark.commands.common import RESULTS, GridFile, Overrides, Results, console, resolve_grid
from benchmark.errors import BenchError
from benchmark.grid import Cell, Grid
from benchmark.metrics.registry import headline_metrics
from benchmark.store import CellStatus, CellStore


def status(grid: GridFile = None, override: Overrides = [], results: Results = RESULTS) -> None:
    """Done, failed and pending cells of a grid, with their headline metrics."""
    from benchmark.runner.evaluate_stage import is_stale

    spec = resolve_grid(grid, [], override)
    store = CellStore(results)
    if results.exists() and not results.is_dir():
        raise BenchError(f"--results {results}: is a file, not a cell store")
    states = [store.status(c.id) for c in spec.cells]
    counts = ", ".join(f"{sum(s == k for s in states)} {k.value}" for k in CellStatus)
    if not results.exists():
        counts += f" (no store at {results} yet)"
    metrics = done_metrics(store, list(spec.cells))
    stale = sum(is_stale(store, c, metrics[c.id]) for c in spec.cells if c.id in metrics)
    if stale:
        counts += f" ({stale} done under an older protocol: bench evaluate --stale)"
    console.print(cell_table(spec, list(spec.cells), store, f"{spec.name}: {counts}", metrics))
    for cell, state in zip(spec.cells, states):
        if state == CellStatus.DAMAGED:
            console.print(f"[red]damaged {cell.id}: {store.damage(cell.id)}", soft_wrap=True)
    if CellStatus.DAMAGED in states:
        console.print("bench run redoes damaged cells (their files are moved to damaged/ first, not deleted)")


def done_metrics(store: CellStore, cells: list[Cell]) -> dict[str, dict]:
    """Each done cell's metrics.json, read once."""
    return {c.id: store.read(c.id, "metrics.json") for c in cells if store.status(c.id) == CellStatus.DONE}


def cell_table(grid: Grid, cells: list[Cell], store: CellStore, title: str, metrics: dict | None = None) -> Table:
    """A row per cell: its axis values, status and the headline metrics some of them measured (`metrics`: the
    done cells' metrics.json as read once, read here when not given)."""
    from benchmark.runner.evaluate_stage import is_stale
    from benchmark.store.cells import CHECKPOINT, RESUME

    stored = metrics if metrics is not None else done_metrics(store, cells)
    table = Table(title=title)
    table.add_column("cell")
    for axis in grid.axes:
        table.add_column(axis)
    table.add_column("status")
    measured = [m for m in headline_metrics() if any((stored.get(c.id) or {}).get(m) is not None for c in cells)]
    for metric in measured:  # a column only for what some cell measured: the table stays readable
        table.add_column(metric, justify="right")
    for cell in cells:
        status = store.status(cell.id)
        values, cell_metrics = dict(cell.axis_values), stored.get(cell.id) or {}
        shown = status.value
        if status == CellStatus.FAILED:
            shown = f"failed: {store.read(cell.id, 'failed.json')['reason']}"
        elif cell.id in stored and is_stale(store, cell, stored[cell.id]):
            shown = "done, stale protocol (bench evaluate)"
        elif cell.id in stored and not (store.cell_dir(cell.id) / CHECKPOINT).exists():
            shown = "done, no checkpoint (restored)"
        elif (store.cell_dir(cell.id) / RESUME).exists():
            shown = "pending, resumes from its saved state"
        table.add_row(
            cell.id,
            *(str(values.get(a, "")) for a in grid.axes),
            shown,
            *(_fmt(cell_metrics.get(m)) for m in measured),
        )
    return table


def _fmt(value) -> str:
    return "" if value is None else f"{value:.4g}"

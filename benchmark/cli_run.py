"""`bench run` and `bench status`: the grid runner's command-line face."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from benchmark.errors import BenchError
from benchmark.grid import Cell, Grid, load_grid, single_cell_grid
from benchmark.metrics.registry import headline_metrics
from benchmark.runner.grid_run import Progress, RunOptions, RunSummary, filter_cells, run_grid
from benchmark.runner.preflight import check_device, check_results_folder, check_run
from benchmark.runner.tracking import check_tracking
from benchmark.store import CellStatus, CellStore

DEFAULT_GRID = Path("ablations/smoke.yaml")
PROGRESS_COLUMNS = (
    TextColumn("{task.description}"),
    BarColumn(),
    MofNCompleteColumn(),
    TimeElapsedColumn(),
    TextColumn("eta"),
    TimeRemainingColumn(),
)


def resolve_grid(grid_file: Path | None, assignments: list[str], overrides: list[str] | None = None) -> Grid:
    if assignments and grid_file:
        raise BenchError("give either --grid or --set, not both")
    if assignments:
        return single_cell_grid(assignments)
    return load_grid(grid_file or DEFAULT_GRID, overrides)


class RichRunProgress(Progress):
    def __init__(self, bars: RichProgress, total_cells: int):
        self.bars = bars
        self.cells = bars.add_task("cells", total=total_cells)
        self.epochs = bars.add_task("epochs", total=1, visible=False)
        self.in_flight = 0  # cells started and not finished: a pack, or the tasks given to Ray

    def cell_started(self, cell: Cell) -> None:
        label = " ".join(f"{k}={v}" for k, v in cell.axis_values)
        if self.in_flight:
            total = self.bars.tasks[self.epochs].total + cell.config.epochs
            self.bars.update(self.epochs, total=total, description=f"{self.in_flight + 1} cells in flight")
        else:
            self.bars.reset(self.epochs, total=cell.config.epochs, visible=True, description=f"{cell.id} {label}")
        self.in_flight += 1

    def epoch(self, cell: Cell, record: dict) -> None:
        self.bars.advance(self.epochs)
        self.bars.update(self.epochs, description=f"{cell.id} epoch {record['epoch']} loss {record['loss']:.2f}")

    def cell_finished(self, cell: Cell, status: str) -> None:
        self.in_flight -= 1
        self.bars.advance(self.cells)
        if status != "done":
            self.bars.console.print(f"[red]cell {cell.id} {status}")


def run_command(
    console: Console,
    grid: Grid,
    results: Path,
    options: RunOptions,
    only: list[str],
    dry_run: bool,
) -> int:
    store = CellStore(results)
    cells = filter_cells(grid.cells, only)
    check_results_folder(results)
    check_device(options.device)
    if dry_run:
        console.print(cell_table(grid, cells, store, f"{grid.name}: {len(cells)} cells (dry run)"))
        return 0
    check_run(grid, cells, results, options.device, options.data_dir)
    check_tracking(options.tracking)
    todo = len(cells) if options.max_cells is None else min(options.max_cells, len(cells))
    with RichProgress(*PROGRESS_COLUMNS, console=console) as bars:
        summary = run_grid(grid, cells, store, options, RichRunProgress(bars, todo))
    console.print(summary_line(grid, summary, results))
    for cell_id, where in summary.moved_aside.items():
        console.print(f"[yellow]cell {cell_id} was damaged: redone, its damaged files moved to {where}", soft_wrap=True)
    for cell_id, reason in summary.failed.items():
        console.print(f"[red]failed {cell_id}: {reason}")
    return 1 if summary.failed else 0


def evaluate_command(console: Console, grid: Grid, results: Path, only, metric_names, stale, device, data_dir) -> int:
    from benchmark.runner.evaluate_stage import evaluate_cells, groups_for, is_stale
    from benchmark.runner.preflight import check_data_dir, check_store

    store = check_store(results)
    groups_for(metric_names)  # an unknown metric is a user error before anything runs
    device_obj = check_device(device)
    check_data_dir(data_dir)
    selected = filter_cells(grid.cells, only)
    if not any(store.status(c.id) in (CellStatus.DONE, CellStatus.DAMAGED) for c in selected):
        raise BenchError(f"--results {results}: no cell of grid {grid.name} is done there; nothing to measure")
    cells = [c for c in selected if not stale or is_stale(store, c)]
    with RichProgress(*PROGRESS_COLUMNS, console=console) as bars:
        task = bars.add_task("evaluate", total=len(cells))
        summary = evaluate_cells(cells, store, device_obj, data_dir, metric_names, lambda cell: bars.advance(task))
    console.print(
        f"{grid.name}: {len(summary.measured)} measured, {len(summary.not_trained)} not trained yet, "
        f"{len(summary.busy)} busy in another run, {len(summary.damaged)} damaged (store: {results})"
    )
    for cell_id, damage in summary.damaged.items():
        console.print(f"[red]damaged {cell_id}: {damage} (not measured; bench run redoes it)", soft_wrap=True)
    return 1 if summary.damaged else 0


def summary_line(grid: Grid, summary: RunSummary, results: Path) -> str:
    parts = [
        f"{len(summary.done)} trained",
        f"{len(summary.skipped)} already done",
        f"{len(summary.failed)} failed",
    ]
    if summary.busy:
        parts.append(f"{len(summary.busy)} busy in another run")
    if summary.moved_aside:
        parts.append(f"{len(summary.moved_aside)} of them redone because damaged")
    return f"{grid.name}: " + ", ".join(parts) + f" (store: {results})"


def cell_table(grid: Grid, cells: list[Cell], store: CellStore, title: str) -> Table:
    table = Table(title=title)
    table.add_column("cell")
    for axis in grid.axes:
        table.add_column(axis)
    table.add_column("status")
    for metric in headline_metrics():
        table.add_column(metric, justify="right")
    from benchmark.runner.evaluate_stage import is_stale

    for cell in cells:
        status = store.status(cell.id)
        metrics = store.read(cell.id, "metrics.json") if status == CellStatus.DONE else {}
        values = dict(cell.axis_values)
        shown = status.value
        if status == CellStatus.FAILED:
            shown = f"failed: {store.read(cell.id, 'failed.json')['reason']}"
        elif is_stale(store, cell):
            shown = "done, stale protocol (bench evaluate)"
        table.add_row(
            cell.id,
            *(str(values.get(a, "")) for a in grid.axes),
            shown,
            *(_fmt(metrics.get(m)) for m in headline_metrics()),
        )
    return table


def _fmt(value) -> str:
    return "" if value is None else f"{value:.4g}"

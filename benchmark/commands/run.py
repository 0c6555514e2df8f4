"""`bench run`: train and evaluate every cell of a grid that is not done yet.

The runner (torch and the rest) is imported when the command runs, so `bench --help` answers at once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress as RichProgress

from benchmark.commands.common import (
    PROGRESS_COLUMNS,
    RESULTS,
    DataDir,
    Device,
    GridFile,
    Only,
    Results,
    console,
    given_fields,
    resolve_grid,
)
from benchmark.commands.status import cell_table
from benchmark.errors import BenchError
from benchmark.grid import Cell, Grid
from benchmark.runner.tracking import TrackingOptions, check_tracking
from benchmark.store import CellStatus, CellStore

Opt = typer.Option


def run(
    grid: GridFile = None,
    set_: Annotated[list[str], Opt("--set", help="Run one cell without a grid: --set backbone=conv ...")] = [],
    override: Annotated[
        list[str],
        Opt("--override", help="Set a base field of every cell (epochs=3) or an eval setting (eval.recon_size=1000)."),
    ] = [],
    results: Results = RESULTS,
    device: Device = "auto",
    force: Annotated[bool, Opt("--force", help="Retrain cells that are already done.")] = False,
    dry_run: Annotated[bool, Opt("--dry-run", help="List the cells and their status; train nothing.")] = False,
    only: Only = [],
    max_cells: Annotated[int | None, Opt("--max-cells", min=1, help="Train at most N cells.")] = None,
    pack: Annotated[
        bool | None,
        Opt("--pack/--no-pack", help="Train cells differing only in seed/beta/lr together (default: on CUDA)."),
    ] = None,
    compile: Annotated[bool, Opt("--compile", help="torch.compile the training step.")] = False,
    threads: Annotated[
        int | None, Opt("--threads", min=1, help="torch CPU threads per cell (default: torch's, or CPUs / workers).")
    ] = None,
    workers: Annotated[
        int, Opt("--workers", min=1, help="local: train N cells at once, each in its own process (default 1).")
    ] = 1,
    executor: Annotated[
        str,
        Opt(
            "--executor",
            help="local, processes (as --workers N), ray (the ray extra) or slurm (the slurm extra: submitit).",
        ),
    ] = "local",
    ray_address: Annotated[str | None, Opt("--ray-address", help="Join this Ray cluster (default: start one).")] = None,
    ray_cpus: Annotated[int | None, Opt("--ray-cpus", min=1, help="Ray: CPUs of the local Ray (default: all).")] = None,
    cpus_per_cell: Annotated[float, Opt("--cpus-per-cell", min=0.01, help="Ray: CPUs per task.")] = 1.0,
    gpus_per_cell: Annotated[
        float, Opt("--gpus-per-cell", min=0.0, help="Ray: GPUs per task (fractions share).")
    ] = 0.0,
    checkpoint_every: Annotated[
        int,
        Opt(
            "--checkpoint-every",
            min=0,
            help="Save a training cell's state every N epochs (and on SIGTERM); a killed cell resumes from it. "
            "0: only after training and on SIGTERM. Packed cells save none.",
        ),
    ] = 1,
    keep_checkpoints: Annotated[
        bool, Opt("--keep-checkpoints", help="Keep a done cell's last training state (resume.pt).")
    ] = False,
    tracking_trackers: Annotated[
        list[str], Opt("--track", help="Log each cell to an experiment tracker: tensorboard, mlflow (repeatable).")
    ] = [],
    tracking_folder: Annotated[Path, Opt("--track-dir", help="Folder of the trackers' local logs.")] = Path("tracking"),
    tracking_uri: Annotated[
        str | None, Opt("--track-uri", help="MLflow tracking URI (default: a file store in --track-dir).")
    ] = None,
    slurm_partition: Annotated[str | None, Opt("--slurm-partition", help="Slurm: partition of the jobs.")] = None,
    slurm_time_min: Annotated[
        int | None, Opt("--slurm-time", min=1, help="Slurm: minutes per job (default 60).")
    ] = None,
    slurm_mem_gb: Annotated[float | None, Opt("--slurm-mem", min=0.1, help="Slurm: GB of memory per job.")] = None,
    slurm_cpus_per_job: Annotated[
        int | None, Opt("--slurm-cpus", min=1, help="Slurm: CPUs per job (default 1).")
    ] = None,
    slurm_gpus_per_job: Annotated[
        int | None, Opt("--slurm-gpus", min=0, help="Slurm: GPUs per job (default 0).")
    ] = None,
    slurm_cells_per_job: Annotated[
        int | None, Opt("--slurm-cells-per-job", min=1, help="Slurm: cells per job.")
    ] = None,
    slurm_folder: Annotated[
        Path | None, Opt("--slurm-folder", help="Slurm: submitit's job files (default slurm/).")
    ] = None,
    slurm_local: Annotated[
        bool | None,
        Opt("--slurm-local", help="Slurm: run the jobs with submitit's local executor (subprocesses here)."),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Train and evaluate every cell of a grid that is not done yet."""
    from benchmark.runner.grid_run import RunOptions, check_options
    from benchmark.runner.slurm_executor import SlurmOptions

    arguments = dict(locals())
    spec = resolve_grid(grid, set_, override)
    arguments["tracking_trackers"] = tuple(dict.fromkeys(tracking_trackers))  # each tracker once
    slurm = given_fields(SlurmOptions, arguments, "slurm_")
    run_fields = {k: v for k, v in given_fields(RunOptions, arguments).items() if k != "results"}  # run_grid's
    options = RunOptions(
        **run_fields,
        tracking=TrackingOptions(**given_fields(TrackingOptions, arguments, "tracking_")),
        slurm=SlurmOptions(**slurm) if slurm or executor == "slurm" else None,
    )
    check_options(options)  # the options together, before anything runs
    raise typer.Exit(run_command(console, spec, results, options, only, dry_run))


class RichRunProgress:
    """The runner's progress hooks (runner/loop.py Progress) as rich progress bars."""

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


def run_command(console: Console, grid: Grid, results: Path, options, only: list[str], dry_run: bool) -> int:
    from benchmark.runner.grid_run import filter_cells, run_grid
    from benchmark.runner.preflight import check_device, check_results_folder, check_run

    store = CellStore(results)
    cells = filter_cells(grid.cells, only)
    check_results_folder(results)
    check_device(options.device)
    _published_hint(console, grid, cells, store, results)
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


def _published_hint(console: Console, grid: Grid, cells: list[Cell], store: CellStore, results: Path) -> None:
    """Pending cells that the grid's published report (reports/<grid>/, from the working folder) holds done: a
    fresh store would train them again, `bench store restore` would not."""
    from benchmark.report.published_data import published_cells

    try:
        published = published_cells(Path("reports") / grid.name)
    except BenchError:  # a damaged report is `bench report`'s to refuse, not a reason to stop a run
        return
    again = [c for c in cells if c.id in published and store.status(c.id) == CellStatus.PENDING]
    if again:
        console.print(
            f"[yellow]{len(again)} of these cells are done in reports/{grid.name}/cells.jsonl: `bench store restore "
            f"--grid {grid.source} --results {results}` puts them in the store instead of training them again",
            soft_wrap=True,
        )


def summary_line(grid: Grid, summary, results: Path) -> str:
    parts = [f"{len(summary.done)} trained", f"{len(summary.skipped)} already done", f"{len(summary.failed)} failed"]
    if summary.busy:
        parts.append(f"{len(summary.busy)} busy in another run")
    if summary.moved_aside:
        parts.append(f"{len(summary.moved_aside)} of them redone because damaged")
    return f"{grid.name}: " + ", ".join(parts) + f" (store: {results})"

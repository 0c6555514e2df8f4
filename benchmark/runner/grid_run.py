"""Run a grid: skip done cells, group the rest into units (packs), hand them to an executor.

The executors share one claim / execute / store loop (loop.py). An interrupted cell (Ctrl-C, kill -9,
SIGTERM) leaves a partial folder that the next run redoes, from the training state it saved last
(every `checkpoint_every` epochs, and on SIGTERM at its next batch: training/resume.py).
"""

from __future__ import annotations

import importlib
from dataclasses import replace

from benchmark.errors import BenchError
from benchmark.grid import Cell, Grid
from benchmark.grid.spec import parse_assignments
from benchmark.registry import Registry
from benchmark.runner.loop import Progress, RunOptions, RunSummary, run_locally
from benchmark.runner.provenance import pin_code
from benchmark.runner.tracking import prepare_tracking
from benchmark.store import CellStatus, CellStore
from benchmark.training.resume import STOP

__all__ = ["EXECUTORS", "Progress", "RunOptions", "RunSummary", "check_options", "filter_cells", "run_grid"]


def filter_cells(cells: tuple[Cell, ...], only: list[str]) -> list[Cell]:
    """`--only KEY=VALUE`: keep cells whose field KEY equals VALUE (parsed as YAML).

    A filter that keeps no cell is an error naming the values the field takes in the grid."""
    selected = list(cells)
    fields = list(cells[0].config.model_dump())
    for key, value in parse_assignments("--only", only).items():
        if key not in fields:
            raise BenchError(f"--only {key}: unknown field {key!r}; valid: {', '.join(fields)}")
        kept = [c for c in selected if _comparable(getattr(c.config, key)) == _comparable(value)]
        if not kept:
            present = sorted({_comparable(getattr(c.config, key)) for c in selected}, key=str)
            raise BenchError(
                f"--only {key}={value}: matches no cell; {key} takes {', '.join(map(str, present))} in the cells left"
            )
        selected = kept
    return selected


def _comparable(value):
    return tuple(value) if isinstance(value, list) else value


def grid_record(grid: Grid) -> list[dict]:
    return [{"id": c.id, "axes": dict(c.axis_values)} for c in grid.cells]


def run_grid(
    grid: Grid, cells: list[Cell], store: CellStore, options: RunOptions, progress: Progress | None = None
) -> RunSummary:
    progress = progress or Progress()
    pin_code()
    store.record_grid(grid.name, grid.source, grid_record(grid), grid.overrides)
    summary = RunSummary()
    todo = [c for c in cells if options.force or store.status(c.id) != CellStatus.DONE]
    summary.skipped = [c.id for c in cells if c not in todo]
    units = pack_units(todo[: options.max_cells], options)
    # where cells save their training state, and the grid their tracker runs are grouped by
    options = replace(options, results=str(store.root), tracking=replace(options.tracking, grid=grid.name))
    prepare_tracking(options.tracking)
    with STOP.handling():  # SIGTERM: cells in training save their state, then the run ends (Preempted)
        EXECUTORS[executor_name(options)](units, store, options, progress, summary)
    return summary


def check_options(options: RunOptions) -> None:
    """The run's options together, before anything runs: a known executor, and each executor's own options
    only with it (Slurm's: submitit installed and its job folder writable)."""
    EXECUTORS[options.executor]  # an unknown name is one line naming the known ones
    if options.workers > 1 and options.executor not in ("local", "processes"):
        raise BenchError(
            f"--workers {options.workers} is for the local executor; with {options.executor}, set --cpus-per-cell"
        )
    if options.slurm is not None and options.executor != "slurm":
        raise BenchError(f"--slurm-* options are for --executor slurm (the executor here: {options.executor})")
    if options.executor == "slurm" and options.slurm is not None:
        importlib.import_module("benchmark.runner.slurm_executor").check_slurm(options.slurm)


def executor_name(options: RunOptions) -> str:
    """`--workers N` (N > 1) is the processes executor."""
    return "processes" if options.executor == "local" and options.workers > 1 else options.executor


def _imported(module: str, function: str):
    """An executor whose module is imported only when it runs (Ray is an optional, heavy import)."""

    def run(*args) -> None:
        getattr(importlib.import_module(module), function)(*args)

    return run


EXECUTORS = Registry("executor")
EXECUTORS.register("local")(run_locally)
EXECUTORS.register("processes")(_imported("benchmark.runner.process_pool", "run_in_processes"))
EXECUTORS.register("ray")(_imported("benchmark.runner.ray_executor", "run_on_ray"))
EXECUTORS.register("slurm")(_imported("benchmark.runner.slurm_executor", "run_on_slurm"))


def _packing(options: RunOptions) -> bool:
    """Packing pays where one small model leaves the device idle (a GPU); on CPU it measured slower."""
    if options.pack is not None:
        return options.pack
    from benchmark.training import resolve_device

    return resolve_device(options.device).type == "cuda"


def pack_units(cells: list[Cell], options: RunOptions) -> list[list[Cell]]:
    """Groups of cells to train together: same pack key and evaluation, at most max_pack each."""
    from benchmark.training.packed import pack_key

    if not _packing(options):
        return [[c] for c in cells]
    groups: dict[tuple, list[Cell]] = {}
    for index, cell in enumerate(cells):
        key = pack_key(cell.config)
        groups.setdefault((key, cell.eval) if key else ("alone", index), []).append(cell)
    return [
        group[i : i + options.max_pack] for group in groups.values() for i in range(0, len(group), options.max_pack)
    ]

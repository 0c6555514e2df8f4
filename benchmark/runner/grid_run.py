"""Run a grid: skip done cells, claim each cell's lock, execute it, store the result.

A failed cell is recorded with its reason and the grid goes on. An interrupted
cell (Ctrl-C, kill -9) leaves a partial folder that the next run redoes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmark.errors import BenchError
from benchmark.grid import Cell, Grid
from benchmark.grid.spec import parse_assignments
from benchmark.registry import Registry
from benchmark.runner.execute import CellResult, execute_cell, execute_pack, failed_results
from benchmark.store import CellStatus, CellStore


@dataclass
class RunOptions:
    device: str = "auto"
    force: bool = False
    data_dir: Any = None
    max_cells: int | None = None
    pack: bool | None = None  # train compatible cells together (training/packed.py); None = on CUDA only
    compile: bool = False  # torch.compile the training step
    max_pack: int = 8
    threads: int | None = None  # torch CPU threads per cell; None = torch's default (or CPUs / workers)
    workers: int = 1  # local: cells trained at once, each in its own process
    executor: str = "local"
    ray_address: str | None = None  # join this Ray cluster; None = start a local one for the run
    ray_cpus: int | None = None  # CPUs of the local Ray started for the run; None = all
    cpus_per_cell: float = 1.0
    gpus_per_cell: float = 0.0


@dataclass
class RunSummary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already done
    failed: dict[str, str] = field(default_factory=dict)  # id -> reason
    busy: list[str] = field(default_factory=list)  # another run holds the lock


class Progress:
    """Hooks the runner calls; the CLI fills them with rich progress bars."""

    def cell_started(self, cell: Cell) -> None: ...
    def epoch(self, cell: Cell, record: dict) -> None: ...
    def cell_finished(self, cell: Cell, status: str) -> None: ...


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
    grid: Grid,
    cells: list[Cell],
    store: CellStore,
    options: RunOptions,
    progress: Progress | None = None,
    execute: Callable[..., CellResult] = execute_cell,
) -> RunSummary:
    progress = progress or Progress()
    store.record_grid(grid.name, grid.source, grid_record(grid))
    summary = RunSummary()
    todo = [c for c in cells if options.force or store.status(c.id) != CellStatus.DONE]
    summary.skipped = [c.id for c in cells if c not in todo]
    units = pack_units(todo[: options.max_cells], options)
    EXECUTORS[options.executor](units, store, options, progress, summary, execute)
    return summary


def run_locally(units, store: CellStore, options: RunOptions, progress: Progress, summary: RunSummary, execute):
    if options.workers > 1:
        from benchmark.runner.process_pool import run_in_processes

        return run_in_processes(units, store, options, progress, summary, execute)
    for unit in units:
        with contextlib.ExitStack() as held:
            mine = begin_unit(unit, store, held, progress, summary)
            if mine:
                store_results(store, mine, execute_unit(mine, options, progress, execute), progress, summary)


def run_concurrently(units, store: CellStore, progress, summary, pending: dict, submit, wait_any) -> None:
    """Claim each unit and `submit` it (which returns a handle kept in `pending`), then store each
    unit's results as `wait_any(pending)` hands back (handle, results). The caller owns `pending`,
    so it can cancel what is still in flight when interrupted."""
    with contextlib.ExitStack() as held:
        for unit in units:
            mine = begin_unit(unit, store, held, progress, summary)
            if mine:
                pending[submit(mine)] = mine
        while pending:
            handle, results = wait_any(pending)
            cells = pending.pop(handle)
            for cell, result in zip(cells, results):  # workers report epochs only with their results
                for record in result.log:
                    progress.epoch(cell, record)
            store_results(store, cells, results, progress, summary)


def begin_unit(unit: list[Cell], store: CellStore, held: contextlib.ExitStack, progress, summary) -> list[Cell]:
    """Claim the unit's cells (skipping those another run holds) and start their folders."""
    mine = [c for c in unit if held.enter_context(store.claim(c.id))]
    summary.busy += [c.id for c in unit if c not in mine]
    for cell in mine:
        progress.cell_started(cell)
        store.begin(cell.id, cell.resolved())
    return mine


def store_results(store: CellStore, cells: list[Cell], results: list[CellResult], progress, summary) -> None:
    for cell, result in zip(cells, results):
        if result.failure:
            store.fail(cell.id, result.failure, result.provenance, result.log)
            summary.failed[cell.id] = result.failure
        else:
            store.finish(cell.id, result)
            summary.done.append(cell.id)
        progress.cell_finished(cell, "failed" if result.failure else "done")


def execute_unit(cells: list[Cell], options: RunOptions, progress: Progress, execute=execute_cell) -> list[CellResult]:
    """Run one cell or one pack; any error inside becomes those cells' failure, never the grid's."""
    if options.threads:
        import torch

        torch.set_num_threads(options.threads)
    try:
        if len(cells) == 1:
            on_epoch = lambda record: progress.epoch(cells[0], record)  # noqa: E731
            return [execute(cells[0], options.device, options.data_dir, on_epoch, compile=options.compile)]
        return execute_pack(cells, options.device, options.data_dir, progress.epoch)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as err:  # noqa: BLE001 - isolation is the point
        reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        return failed_results(cells, reason)


def _packing(options: RunOptions) -> bool:
    """Packing pays where one small model leaves the device idle (a GPU); on CPU it measured slower."""
    if options.pack is not None:
        return options.pack
    from benchmark.training import resolve_device

    return resolve_device(options.device).type == "cuda"


def _run_on_ray(*args):
    from benchmark.runner.ray_executor import run_on_ray

    run_on_ray(*args)


EXECUTORS = Registry("executor")
EXECUTORS.register("local")(run_locally)
EXECUTORS.register("ray")(_run_on_ray)


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

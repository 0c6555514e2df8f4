"""The loop every executor shares: claim a unit's cells, execute it, store what comes back.

Executors (local here, processes in process_pool.py, Ray in ray_executor.py) import this module and
nothing else of the runner; it imports none of them. A failed cell is recorded with its reason and
the grid goes on.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from benchmark.grid import Cell
from benchmark.runner.execute import CellResult, execute_cell, execute_pack, failed_results
from benchmark.runner.provenance import code_fingerprint
from benchmark.runner.tracking import TrackingOptions
from benchmark.store import CellStatus, CellStore
from benchmark.store.cells import RESUME
from benchmark.training import resolve_device
from benchmark.training.resume import Checkpointing


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
    workers: int = 1  # processes executor: cells trained at once, each in its own process
    executor: str = "local"
    ray_address: str | None = None  # join this Ray cluster; None = start a local one for the run
    ray_cpus: int | None = None  # CPUs of the local Ray started for the run; None = all
    cpus_per_cell: float = 1.0
    gpus_per_cell: float = 0.0
    checkpoint_every: int = 1  # epochs between a training cell's saved states (training/resume.py); 0: none
    keep_checkpoints: bool = False  # keep a done cell's last saved training state (resume.pt)
    results: str | None = None  # the store's folder, where workers save training states (set by run_grid)
    tracking: TrackingOptions = field(default_factory=TrackingOptions)  # --track: experiment trackers
    slurm: Any = None  # the slurm executor's SlurmOptions (runner/slurm_executor.py)


@dataclass
class RunSummary:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already done
    failed: dict[str, str] = field(default_factory=dict)  # id -> reason
    busy: list[str] = field(default_factory=list)  # another run holds the lock
    moved_aside: dict[str, str] = field(default_factory=dict)  # damaged cell id -> where its files went

    def add(self, other: RunSummary) -> None:
        """Take in what another part of the run (a Slurm job) did."""
        self.done += other.done
        self.skipped += other.skipped
        self.failed |= other.failed
        self.busy += other.busy
        self.moved_aside |= other.moved_aside


class Progress:
    """Hooks the runner calls; the CLI fills them with rich progress bars."""

    def cell_started(self, cell: Cell) -> None: ...
    def epoch(self, cell: Cell, record: dict) -> None: ...
    def cell_finished(self, cell: Cell, status: str) -> None: ...


def run_locally(units, store: CellStore, options: RunOptions, progress: Progress, summary: RunSummary) -> None:
    """The default executor: one unit after another in this process."""
    for unit in units:
        with contextlib.ExitStack() as held:
            mine = begin_unit(unit, store, held, progress, summary, options)
            if mine:
                store_results(store, mine, execute_unit(mine, options, progress), progress, summary, options)


def run_concurrently(units, store: CellStore, progress, summary, pending: dict, submit, wait_any, options) -> None:
    """Claim each unit and `submit` it (which returns a handle kept in `pending`), then store each
    unit's results as `wait_any(pending)` hands back (handle, results). The caller owns `pending`,
    so it can cancel what is still in flight when interrupted."""
    with contextlib.ExitStack() as held:
        for unit in units:
            mine = begin_unit(unit, store, held, progress, summary, options)
            if mine:
                pending[submit(mine)] = mine
        while pending:
            handle, results = wait_any(pending)
            cells = pending.pop(handle)
            for cell, result in zip(cells, results):  # workers report epochs only with their results
                for record in result.log:
                    progress.epoch(cell, record)
            store_results(store, cells, results, progress, summary, options)


def begin_unit(unit: list[Cell], store: CellStore, held, progress, summary, options: RunOptions) -> list[Cell]:
    """Claim the unit's cells (skipping those another run holds) and start their folders (keeping a saved
    training state to resume from, unless the run is forced)."""
    mine = [c for c in unit if held.enter_context(store.claim(c.id))]
    summary.busy += [c.id for c in unit if c not in mine]
    finished = [c for c in mine if not options.force and store.status(c.id) == CellStatus.DONE]
    summary.skipped += [c.id for c in finished]  # another run finished it since this one looked
    mine = [c for c in mine if c not in finished]
    for cell in mine:
        progress.cell_started(cell)
        moved = store.begin(cell.id, cell.resolved(), keep_resume=not options.force)
        if moved:
            summary.moved_aside[cell.id] = str(moved)
    return mine


def store_results(store: CellStore, cells: list[Cell], results: list[CellResult], progress, summary, options) -> None:
    for cell, result in zip(cells, results):
        if result.failure:
            store.fail(cell.id, result.failure, result.provenance, result.log)
            summary.failed[cell.id] = result.failure
        else:
            store.finish(cell.id, result, keep_resume=options.keep_checkpoints)
            summary.done.append(cell.id)
        progress.cell_finished(cell, "failed" if result.failure else "done")


def cell_checkpointing(cell: Cell, options: RunOptions) -> Checkpointing | None:
    """Where and how often the cell saves its training state; None where the store's folder is not
    reachable from this process (a Ray node without the store's filesystem) or the run asks for none."""
    if not options.results or not options.checkpoint_every:
        return None
    folder = CellStore(options.results).cell_dir(cell.id)
    if not folder.is_dir():
        return None
    origin = {"code": code_fingerprint(), "device": resolve_device(options.device).type}
    return Checkpointing(folder / RESUME, cell.id, options.checkpoint_every, origin)


def execute_unit(cells: list[Cell], options: RunOptions, progress: Progress) -> list[CellResult]:
    """Run one cell or one pack; any error inside becomes those cells' failure, never the grid's."""
    if options.threads:
        import torch

        torch.set_num_threads(options.threads)
    tracked: dict = {}

    def on_epoch(cell: Cell, record: dict) -> None:
        progress.epoch(cell, record)
        tracked[cell.id].epoch(record)

    try:
        tracked |= {cell.id: options.tracking.open(cell) for cell in cells}
        if len(cells) == 1:
            checkpointing = cell_checkpointing(cells[0], options)
            epoch = lambda record: on_epoch(cells[0], record)  # noqa: E731
            results = [execute_cell(cells[0], options.device, options.data_dir, epoch, options.compile, checkpointing)]
        else:
            results = execute_pack(cells, options.device, options.data_dir, on_epoch)
    except Exception as err:  # noqa: BLE001 - isolation is the point
        reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        results = failed_results(cells, reason)
    for result in results:
        if result.cell_id in tracked:
            tracked[result.cell_id].end(None if result.failure else result)
    return results

"""Execute one cell: load data, train, evaluate. Pure: it returns results and writes nothing,
so any executor (local, Ray) can run it and hand the results to the process that owns the store.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import torch

from benchmark.grid import Cell
from benchmark.metrics.evaluate import evaluate_cell
from benchmark.runner.provenance import provenance
from benchmark.training import CellFailed, TrainedCell, resolve_device, train_cell
from benchmark.training.packed import train_packed
from benchmark.training.trainer import load_cell_data


@dataclass
class CellResult:
    cell_id: str
    log: list[dict]
    metrics: dict | None = None
    images: dict[str, bytes] = field(default_factory=dict)
    state_dict: dict | None = None
    provenance: dict = field(default_factory=dict)
    failure: str | None = None  # reason, when the cell failed
    training: dict = field(default_factory=dict)  # training_summary: epochs run, epoch selected, convergence


def failed_results(cells: list[Cell], reason: str) -> list[CellResult]:
    """The same failure for every cell of a unit that never produced results of its own."""
    return [CellResult(c.id, [], failure=reason) for c in cells]


@functools.lru_cache(maxsize=2)
def _cell_data(
    dataset: str,
    image_size: int,
    train_size: int | None,
    seed: int,
    data_dir,
    binarize: str = "none",
    val_size: int = 0,
    binarize_seed: int = 0,
):
    """Cells of one grid mostly share their data: keep the last two bundles in memory."""
    return load_cell_data(dataset, image_size, train_size, seed, data_dir, binarize, val_size, binarize_seed)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def execute_cell(
    cell: Cell, device: str = "auto", data_dir=None, on_epoch=None, compile: bool = False, checkpointing=None
) -> CellResult:
    """Train (resuming from `checkpointing`'s saved state if there is one) and evaluate one cell."""
    device_obj = resolve_device(device)
    info = {**provenance(device_obj), "start": _now(), "compile": compile}
    start = time.perf_counter()
    log: list[dict] = []
    try:
        config = cell.config
        subset_seed = config.seed if config.train_size else 0  # the whole train split does not depend on it
        bundle = _cell_data(
            config.dataset,
            config.image_size,
            config.train_size,
            subset_seed,
            data_dir,
            config.binarize,
            config.val_size,
            config.binarize_seed,
        )

        def record(entry: dict) -> None:
            log.append(entry)
            if on_epoch:
                on_epoch(entry)

        trained = train_cell(config, device_obj, data_dir, bundle, record, compile, checkpointing)
        return _evaluated(cell, trained, info, start, data_dir)
    except CellFailed as err:
        return _failed(cell, log, info, start, str(err))
    except torch.OutOfMemoryError as err:
        return _failed(cell, log, info, start, f"out of memory: {str(err).splitlines()[0]}")


def execute_pack(cells: list[Cell], device: str = "auto", data_dir=None, on_epoch=None) -> list[CellResult]:
    """Train compatible cells together (training/packed.py), then evaluate each on its own. A pack saves no
    training state mid-way: the next run may pack other cells together, and a pack's state is theirs at once."""
    device_obj = resolve_device(device)
    info = {**provenance(device_obj), "start": _now(), "packed_with": [c.id for c in cells]}
    start = time.perf_counter()
    first = cells[0].config
    full = _cell_data(first.dataset, first.image_size, None, 0, data_dir, first.binarize, 0, first.binarize_seed)
    try:
        outcomes = train_packed(
            [c.config for c in cells],
            device_obj,
            data_dir,
            full,
            lambda k, entry: on_epoch and on_epoch(cells[k], entry),
        )
    except torch.OutOfMemoryError as err:
        return [_failed(c, [], dict(info), start, f"out of memory: {str(err).splitlines()[0]}") for c in cells]
    results = []
    for cell, outcome in zip(cells, outcomes):
        if isinstance(outcome, CellFailed):
            results.append(_failed(cell, [], dict(info), start, str(outcome)))
        else:
            results.append(_evaluated(cell, outcome, dict(info), start, data_dir))
    return results


def _evaluated(cell: Cell, trained: TrainedCell, info: dict, start: float, data_dir) -> CellResult:
    evaluation = evaluate_cell(trained, cell.eval, data_dir)
    info.update(end=_now(), wall_seconds=round(time.perf_counter() - start, 3))
    state = {k: v.cpu() for k, v in trained.model.state_dict().items()}
    return CellResult(
        cell.id, trained.log, evaluation.metrics, evaluation.images, state, info, training=trained.summary
    )


def _failed(cell: Cell, log, info, start, reason: str) -> CellResult:
    info.update(end=_now(), wall_seconds=round(time.perf_counter() - start, 3))
    return CellResult(cell.id, log, provenance=info, failure=reason)

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
from benchmark.training import CellFailed, resolve_device, train_cell
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


@functools.lru_cache(maxsize=2)
def _cell_data(dataset: str, image_size: int, train_size: int | None, seed: int, data_dir):
    """Cells of one grid mostly share their data: keep the last two bundles in memory."""
    return load_cell_data(dataset, image_size, train_size, seed, data_dir)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def execute_cell(cell: Cell, device: str = "auto", data_dir=None, on_epoch=None) -> CellResult:
    device_obj = resolve_device(device)
    info = {**provenance(device_obj), "start": _now()}
    start = time.perf_counter()
    log: list[dict] = []
    try:
        config = cell.config
        bundle = _cell_data(config.dataset, config.image_size, config.train_size, config.seed, data_dir)
        trained = train_cell(
            cell.config,
            device=device_obj,
            data_dir=data_dir,
            bundle=bundle,
            on_epoch=lambda record: (log.append(record), on_epoch and on_epoch(record)),
        )
        evaluation = evaluate_cell(trained, cell.eval, data_dir)
    except CellFailed as err:
        return _failed(cell, log, info, start, str(err))
    except torch.OutOfMemoryError as err:
        return _failed(cell, log, info, start, f"out of memory: {str(err).splitlines()[0]}")
    info.update(end=_now(), wall_seconds=round(time.perf_counter() - start, 3))
    state = {k: v.cpu() for k, v in trained.model.state_dict().items()}
    return CellResult(cell.id, log, evaluation.metrics, evaluation.images, state, info)


def _failed(cell: Cell, log, info, start, reason: str) -> CellResult:
    info.update(end=_now(), wall_seconds=round(time.perf_counter() - start, 3))
    return CellResult(cell.id, log, provenance=info, failure=reason)

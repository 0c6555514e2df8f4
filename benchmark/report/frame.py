"""The store as pandas frames: one row per cell, and a long format with one row per metric."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.errors import BenchError
from benchmark.grid import load_grid
from benchmark.grid.spec import GridSpec
from benchmark.metrics.groups.label import set_by_definition
from benchmark.metrics.registry import headline_metrics, metric_specs
from benchmark.runner.grid_run import grid_record
from benchmark.store import CellStatus, CellStore
from benchmark.store.cells import SAMPLE_TIMING


@dataclass
class GridCells:
    """A grid's cells as a store recorded them (or as its file expands them before any run), with the grid
    file's settings: `spec`, an empty one when the file is gone."""

    name: str
    axes: list[str]  # varying fields, seed last
    cells: list[dict]  # {"id", "axes"}
    spec: GridSpec
    overrides: tuple[str, ...] = ()  # --override of the run that recorded the cells
    source: str = ""  # the grid file the run read

    def record(self) -> dict:
        """The grid as the store records it (store.record_grid), for a report's published data."""
        return {"name": self.name, "source": self.source, "overrides": list(self.overrides), "cells": self.cells}


def from_grid_file(store: CellStore, path: Path) -> GridCells:
    """The grid's cells as last run (the store's record), else as its file expands them."""
    grid = load_grid(path)
    record = store.grid_record(grid.name)
    if record is None:
        return GridCells(grid.name, list(grid.axes), grid_record(grid), grid.spec, source=grid.source)
    overrides = _still_overriding(path, grid, record.get("overrides", ()))
    return GridCells(grid.name, list(grid.axes), record["cells"], grid.spec, overrides, record["source"])


def _still_overriding(path: Path, grid, overrides) -> tuple[str, ...]:
    """The run's --override assignments that the grid file does not now say itself: a recipe moved into
    the file after the run (same cells, same ids) is no longer reported as an override of it."""

    def ids(cells) -> list[str]:
        return [cell.id for cell in cells]

    kept = []
    for assignment in overrides:
        try:
            same = ids(load_grid(path, [assignment]).cells) == ids(grid.cells)
        except BenchError:
            same = False  # the file no longer accepts it: it certainly differs
        if not same:
            kept.append(assignment)
    return tuple(kept)


def from_store_record(store: CellStore, name: str) -> GridCells:
    record = store.grid_record(name)
    if record is None:
        raise BenchError(f"{store.root}: no grid named {name!r} has been run")
    axes = list(record["cells"][0]["axes"]) if record["cells"] else ["seed"]
    spec = load_grid(record["source"]).spec if Path(record["source"]).exists() else GridSpec(name=name)
    return GridCells(name, axes, record["cells"], spec, tuple(record.get("overrides", ())), record["source"])


def done_cells(store: CellStore, grid: GridCells) -> set[str]:
    return {entry["id"] for entry in grid.cells if store.status(entry["id"]) == CellStatus.DONE}


@dataclass(frozen=True)
class CellFiles:
    """A cell's stored files as a report reads them, once (a pending or damaged cell: none of them)."""

    status: CellStatus
    config: dict | None = None
    metrics: dict | None = None
    log: list | None = None
    failed: dict | None = None
    timing: dict | None = None  # bench perf sample's record (store.SAMPLE_TIMING), where measured
    damage: object = ""  # why a damaged cell is not read (store.damage: what failed its check)

    def reason(self) -> str:
        if self.status == CellStatus.FAILED:
            return self.failed["reason"]
        return f"damaged: {self.damage}" if self.status == CellStatus.DAMAGED else ""


def read_cells(store: CellStore, grid: GridCells) -> dict[str, CellFiles]:
    """Every cell's files, read from the store once for the whole report; a damaged cell's are not read."""
    files = {}
    for entry in grid.cells:
        cell_id = entry["id"]
        status = store.status(cell_id)
        if status == CellStatus.DAMAGED:
            files[cell_id] = CellFiles(status, damage=store.damage(cell_id))
        elif status in (CellStatus.DONE, CellStatus.FAILED):
            done = status == CellStatus.DONE
            files[cell_id] = CellFiles(
                status,
                config=store.read(cell_id, "config.json"),
                metrics=store.read(cell_id, "metrics.json") if done else None,
                log=store.read(cell_id, "log.json"),
                failed=None if done else store.read(cell_id, "failed.json"),
                timing=_sample_timing(store, cell_id) if done else None,
            )
        else:
            files[cell_id] = CellFiles(status)
    return files


def _sample_timing(store: CellStore, cell_id: str) -> dict | None:
    """A cell's sampling-speed record; a damaged one is a measurement lost, not a damaged cell (not read)."""
    try:
        return store.read(cell_id, SAMPLE_TIMING)
    except BenchError:
        return None


def _cell_seconds(seconds: float | None, training: dict, log: list[dict]) -> float | None:
    """The cell's wall time: its last run's (the provenance), plus, for a cell resumed from a saved state,
    the logged epochs its earlier runs trained (the work after their last save, done again, not counted)."""
    resumed = training.get("resumed_from") or []
    if seconds is None or not resumed:
        return seconds
    before = resumed[-1]["epoch"]  # the 0-based epoch the last run began in: the 1-based epochs up to it ran before
    return seconds + sum(entry.get("epoch_seconds", 0.0) for entry in log if entry.get("epoch", 0) <= before)


def cells_frame(store: CellStore, grid: GridCells, files: dict[str, CellFiles] | None = None) -> pd.DataFrame:
    """One row per cell of the grid: its axes, status, training record and scalar metrics (from `files`, the
    cells' files as read once; read from the store when not given)."""
    files = files if files is not None else read_cells(store, grid)
    rows, specs = [], metric_specs()
    for entry in grid.cells:
        cell_id = entry["id"]
        stored = files[cell_id]
        metrics, config, log = stored.metrics or {}, stored.config or {}, stored.log or []
        row = {"cell": cell_id, "status": stored.status.value, **entry["axes"]}
        row["reason"] = stored.reason()
        provenance, cell = config.get("provenance", {}), config.get("cell", {})
        row["wall_seconds"] = _cell_seconds(provenance.get("wall_seconds"), config.get("training") or {}, log)
        row["start"], row["end"] = provenance.get("start"), provenance.get("end")
        row["trained_epochs"] = cell.get("epochs")
        row["train_images"] = cell.get("train_size")  # None: the whole train split
        row["image_px"] = cell.get("image_size")
        row["curve_images"] = cell.get("curve_size") or None  # test images of its learning curve
        row.setdefault("task", cell.get("task"))  # an image task hides pixels (report/comparability.py)
        row.setdefault("recon_loss", cell.get("recon_loss"))  # the decoder family: sets the loss's sign and scale
        row["reads_condition"] = _reads_condition(cell) if cell else None
        row["binary"] = cell.get("binarize", "none") != "none" if cell else None  # fixed and dynamic: one test set
        row["n_samples"] = config.get("eval", {}).get("n_samples")
        training = config.get("training", {})  # training_summary; absent for cells trained before it existed
        row["converged"] = training.get("converged")
        row["epochs_run"] = training.get("epochs_run")
        row["selected_epoch"] = training.get("selected_epoch")
        row["stopped"] = training.get("stopped")  # early_stopping or epoch_budget
        row["train_seconds"] = sum(e.get("seconds", 0.0) for e in log) if log else None
        row["eval_seconds"] = sum((metrics.get("eval_seconds") or {}).values()) if metrics else None
        row["train_ms_per_image"] = _train_ms_per_image(log)
        timing = stored.timing or {}
        row["sample_ms_per_image"] = timing.get("ms_per_image")
        for key in ("images", "batch", "cpu", "load_average", "sampler"):
            row[f"sample_{key}"] = timing.get(key)
        row.update({m: specs[m].value(metrics) for m in _scalar_metrics(row)})
        if row["reads_condition"] is False:
            if row.get("nll_marginal") is None:
                row["nll_marginal"] = row.get("nll_iw")  # a model that ignores the label: p(x|y) = p(x) for every y
            row.update(dict.fromkeys(set_by_definition(2)))  # 0 information, chance accuracy: not measured
        rows.append(row)
    frame = pd.DataFrame(rows)
    for metric in metric_specs():
        if metric in frame:
            frame[metric] = pd.to_numeric(frame[metric], errors="coerce")
    return frame


def _train_ms_per_image(log: list) -> float | None:
    """Median over epochs of the training loop's milliseconds per image (the epoch log's images/s), the first
    epoch left out when there are others (warm-up); measured while the run's other cells shared the machine."""
    rates = [e["images_per_second"] for e in log if e.get("images_per_second")]
    rates = rates[1:] if len(rates) > 1 else rates
    return 1000 / float(pd.Series(rates).median()) if rates else None


def _reads_condition(cell: dict) -> bool:
    """Whether the cell's samples and density depend on its condition, as its model says."""
    from benchmark.registry import MODELS

    return MODELS[cell.get("model", "cvae")].reads_condition(cell)


def _scalar_metrics(row: dict) -> list[str]:
    """Every registered metric (headline or not, e.g. target_xent_elbo for a published table) that is not
    already a column of the row."""
    return [name for name in metric_specs() if name not in row]


def long_frame(frame: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    done = frame[frame["status"] == "done"]
    metrics = [m for m in headline_metrics() if done[m].notna().any()]
    long = done.melt(id_vars=["cell", *axes], value_vars=metrics, var_name="metric", value_name="value")
    return long.dropna(subset=["value"]).sort_values(["metric", *axes, "cell"]).reset_index(drop=True)


def present_metrics(frame: pd.DataFrame) -> list[str]:
    done = frame[frame["status"] == "done"]
    return [m for m in headline_metrics() if m in done and done[m].notna().any()]


def epoch_logs(files: dict[str, CellFiles], frame: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    rows = []
    for _, cell in frame[frame["status"] == "done"].iterrows():
        for record in files[cell["cell"]].log or []:
            rows.append({**{a: cell[a] for a in axes}, **record})
    return pd.DataFrame(rows)

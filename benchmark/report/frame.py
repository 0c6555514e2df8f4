"""The store as pandas frames: one row per cell, and a long format with one row per metric."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.errors import BenchError
from benchmark.grid import Grid, load_grid
from benchmark.metrics.registry import headline_metrics, metric_specs, scalar_value
from benchmark.runner.grid_run import grid_record
from benchmark.store import CellStatus, CellStore


@dataclass
class GridCells:
    """A grid's cells as a report reads them, with its file's settings (None when the file is gone)."""

    name: str
    axes: list[str]  # varying fields, seed last
    cells: list[dict]  # {"id", "axes"}
    spec: Grid | None = None
    overrides: tuple[str, ...] = ()  # --override of the run that recorded the cells
    source: str = ""  # the grid file the run read

    def record(self) -> dict:
        """The grid as the store records it (store.record_grid), for a report's published data."""
        return {"name": self.name, "source": self.source, "overrides": list(self.overrides), "cells": self.cells}

    @property
    def description(self) -> str:
        return self.spec.description if self.spec else ""

    @property
    def published(self) -> dict | None:
        return self.spec.published if self.spec else None

    @property
    def match_params(self) -> bool:
        return bool(self.spec and self.spec.match_params)

    @property
    def claims(self) -> tuple:
        return self.spec.claims if self.spec else ()

    @property
    def findings_by(self) -> tuple[str, ...]:
        return self.spec.findings_by if self.spec else ()

    @property
    def question(self):
        return self.spec.question if self.spec else None


def from_grid_file(store: CellStore, path: Path) -> GridCells:
    """The grid's cells as last run (the store's record), else as its file expands them."""
    grid = load_grid(path)
    record = store.grid_record(grid.name)
    if record is None:
        return GridCells(grid.name, list(grid.axes), grid_record(grid), grid, source=grid.source)
    overrides = tuple(record.get("overrides", ()))
    return GridCells(grid.name, list(grid.axes), record["cells"], grid, overrides, record["source"])


def from_store_record(store: CellStore, name: str) -> GridCells:
    record = store.grid_record(name)
    if record is None:
        raise BenchError(f"{store.root}: no grid named {name!r} has been run")
    axes = list(record["cells"][0]["axes"]) if record["cells"] else ["seed"]
    spec = load_grid(record["source"]) if Path(record["source"]).exists() else None
    return GridCells(name, axes, record["cells"], spec, tuple(record.get("overrides", ())), record["source"])


def done_cells(store: CellStore, grid: GridCells) -> set[str]:
    return {entry["id"] for entry in grid.cells if store.status(entry["id"]) == CellStatus.DONE}


def cells_frame(store: CellStore, grid: GridCells) -> pd.DataFrame:
    rows = []
    for entry in grid.cells:
        cell_id = entry["id"]
        status = store.status(cell_id)
        readable = status in (CellStatus.DONE, CellStatus.FAILED)  # a damaged cell's files are not read
        metrics = store.read(cell_id, "metrics.json") or {} if status == CellStatus.DONE else {}
        config = store.read(cell_id, "config.json") or {} if readable else {}
        row = {"cell": cell_id, "status": status.value, **entry["axes"]}
        row["reason"] = _reason(store, cell_id, status)
        provenance, cell = config.get("provenance", {}), config.get("cell", {})
        row["wall_seconds"] = provenance.get("wall_seconds")
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
        log = (store.read(cell_id, "log.json") or []) if readable else []
        row["train_seconds"] = sum(e.get("seconds", 0.0) for e in log) if log else None
        row["eval_seconds"] = sum((metrics.get("eval_seconds") or {}).values()) if metrics else None
        row.update({m: scalar_value(metrics.get(m)) for m in _scalar_metrics(row)})
        if row["reads_condition"] is False and row.get("nll_marginal") is None:
            row["nll_marginal"] = row.get("nll_iw")  # a model that ignores the label: p(x|y) = p(x) for every y
        rows.append(row)
    frame = pd.DataFrame(rows)
    for metric in headline_metrics():
        frame[metric] = pd.to_numeric(frame[metric], errors="coerce")
    return frame


def _reads_condition(cell: dict) -> bool:
    """Whether the model's likelihood is conditional: not for conditioning none with the standard prior, whose
    -log p(x|c) is -log p(x)."""
    return cell.get("conditioning") != "none" or cell.get("prior", "standard") != "standard"


def _reason(store: CellStore, cell_id: str, status: CellStatus) -> str:
    if status == CellStatus.FAILED:
        return store.read(cell_id, "failed.json")["reason"]
    if status == CellStatus.DAMAGED:
        return f"damaged: {store.damage(cell_id)}"
    return ""


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


def epoch_logs(store: CellStore, frame: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    rows = []
    for _, cell in frame[frame["status"] == "done"].iterrows():
        for record in store.read(cell["cell"], "log.json") or []:
            rows.append({**{a: cell[a] for a in axes}, **record})
    return pd.DataFrame(rows)

"""A published report carries its data: every cell's config, metrics (all of them, standard errors
included), epoch log and failure, one JSON line per cell in `reports/<grid>/cells.jsonl`, and the grid
record in `reports/<grid>/grid.json`. JSON Lines because a cell's config, metrics and log are nested
records of different lengths (a CSV would flatten them away): `pandas.read_json(path, lines=True)` loads
one row per cell, and `bench report --from-published` renders the report again from these files alone,
with no store and no training: the figures drawn from checkpoints and the cells' own images are taken
from the published report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from benchmark.errors import BenchError
from benchmark.fileio import write_json, write_text
from benchmark.store import CellStatus, CellStore
from benchmark.store.cells import RESUME

CELLS_FILE, GRID_FILE = "cells.jsonl", "grid.json"


def write_cells_file(files: dict, record: dict, assets: Path) -> None:
    """Every cell of the report, as the store holds it (a damaged cell: its status and reason only);
    `files`: the cells' files as the report read them (report/frame.py read_cells)."""
    lines = []
    for entry in record["cells"]:
        stored = files[entry["id"]]
        line = {
            "id": entry["id"],
            "axes": entry["axes"],
            "status": stored.status.value,
            "config": stored.config,
            "metrics": stored.metrics,
            "log": stored.log,
            "failed": stored.failed,
        }
        if stored.timing is not None:
            line["sample_timing"] = stored.timing
        lines.append(json.dumps(line, sort_keys=True, allow_nan=True))
    write_text(assets / CELLS_FILE, "".join(f"{line}\n" for line in lines))
    write_json(assets / GRID_FILE, record)


def published_cells(assets: Path) -> set[str]:
    """The done cells a published report was made from (empty: none published). Reports from before
    cells.jsonl list their done cells in metrics.csv."""
    if (assets / CELLS_FILE).is_file():
        return {line["id"] for line in _lines(assets / CELLS_FILE) if line["status"] == CellStatus.DONE.value}
    if (assets / "metrics.csv").is_file():
        return set(pd.read_csv(assets / "metrics.csv", usecols=["cell"], dtype=str)["cell"])
    return set()


def store_from_published(assets: Path, root: Path) -> CellStore:
    """A store at `root` holding the published cells' files (no checkpoints, no images), to render from."""
    published = read_published(assets)
    store = CellStore(root)
    record = published.record
    store.record_grid(record["name"], record["source"], record["cells"], published.overrides)
    for line in published.lines:
        _restore_line(store, line)
    return store


@dataclass(frozen=True)
class Published:
    """A report's published data: its grid record and its done and failed cells' lines, each checked."""

    assets: Path
    record: dict
    lines: list[dict]

    @property
    def overrides(self) -> tuple[str, ...]:
        """The --override assignments of the run the report was made from."""
        return tuple(self.record.get("overrides", ()))


def read_published(assets: Path) -> Published:
    """The data published beside a report, every line checked before anything is made of it: a missing or
    unreadable file, or a line that is not a whole cell record (its metrics, failure and log of the shapes the
    store writes, its config the cell its id names), is a one-line error naming the file and the line."""
    if is_legacy(assets):
        raise BenchError(
            f"{assets / CELLS_FILE}: not found; this report was published before reports carried their data "
            "(metrics.csv only), so its cells cannot be restored"
        )
    for name in (CELLS_FILE, GRID_FILE):
        if not (assets / name).is_file():
            raise BenchError(f"{assets / name}: not found; this report was published without its data")
    record = _json(assets / GRID_FILE, 1, (assets / GRID_FILE).read_text(), ("name", "source", "cells"))
    lines = _lines(assets / CELLS_FILE, ("id", "status", "config", "log", "metrics", "failed"))
    kept = []
    for number, line in enumerate(lines, 1):
        if line["status"] in RESTORABLE:
            _check_line(assets / CELLS_FILE, number, line)
            kept.append(line)
    return Published(assets, record, kept)


@dataclass
class Restored:
    """What `restore_published` did with each published cell."""

    restored: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # the store has the cell already (any state): left as it is
    busy: list[str] = field(default_factory=list)  # another run holds the cell's lock
    not_in_grid: list[str] = field(default_factory=list)  # not a cell of the grid file as it is now


def restore_published(published: Published, grid, store: CellStore) -> Restored:
    """Put a report's published done and failed cells into `store`, so that a run of `grid` goes on from them on
    another machine or in a later session: `bench run` trains only the cells still pending, `bench report`
    renders them all. A cell the store already holds (done, failed, damaged, or with a saved training state) is
    never touched; a published cell that is not a cell of `grid` is left out, and a grid file that holds none
    of them (it changed since) is an error before anything is written. Each restored cell is written under its
    lock, its metrics last, as `bench run` does."""
    in_grid = {cell.id for cell in grid.cells}
    summary = Restored(not_in_grid=[line["id"] for line in published.lines if line["id"] not in in_grid])
    if published.lines and len(summary.not_in_grid) == len(published.lines):
        raise BenchError(
            f"{published.assets / CELLS_FILE}: none of its {len(published.lines)} cells is a cell of {grid.source} "
            f"with {list(published.overrides) or 'no overrides'}; the grid file changed since the report was published"
        )
    for line in published.lines:
        if line["id"] not in in_grid:
            continue
        with store.claim(line["id"]) as mine:
            if not mine:
                summary.busy.append(line["id"])
            elif store.status(line["id"]) != CellStatus.PENDING or (store.cell_dir(line["id"]) / RESUME).exists():
                summary.held.append(line["id"])
            else:
                store.clear(line["id"])  # what a crash left: a partial folder is redone, here from the record
                _restore_line(store, line)
                summary.restored.append(line["id"])
    return summary


RESTORABLE = (CellStatus.DONE.value, CellStatus.FAILED.value)


def _restore_line(store: CellStore, line: dict) -> None:
    store.restore(line["id"], line["config"], line["log"], line["metrics"], line["failed"], line.get("sample_timing"))


def _check_line(path: Path, number: int, line: dict) -> None:
    """A done or failed line holds what the store writes for such a cell, and its config is the cell its id
    names (a hand-edited line is refused)."""
    from benchmark.config import CellConfig
    from benchmark.grid.spec import Cell
    from benchmark.metrics.protocol import EvalConfig
    from benchmark.store.cells import FAILED, METRICS, REQUIRED_KEYS

    where = f"{path}: line {number} (cell {line['id']!r})"
    shapes = {
        "metrics": (line["metrics"], line["status"] == CellStatus.DONE.value, REQUIRED_KEYS[METRICS]),
        "failed": (line["failed"], line["status"] == CellStatus.FAILED.value, REQUIRED_KEYS[FAILED]),
    }
    for key, (value, needed, keys) in shapes.items():
        if (needed or value is not None) and not (isinstance(value, dict) and all(k in value for k in keys)):
            raise BenchError(f"{where}: its {key} is not a mapping with {', '.join(keys)}")
    if not (line["log"] is None or isinstance(line["log"], list)) or not isinstance(line["id"], str):
        raise BenchError(f"{where}: its log is not a list, or its id not a string")
    try:
        cell = Cell(CellConfig(**line["config"]["cell"]), EvalConfig(**line["config"]["eval"]), ())
    except (KeyError, TypeError, ValueError) as err:
        raise BenchError(f"{where}: not a cell's config ({' '.join(str(err).split())})") from None
    if cell.id != line["id"]:
        raise BenchError(f"{path}: line {number}: its config is cell {cell.id}, not the {line['id']} it names")


LEGACY_NOTE = (
    "**Rendered from the headline metrics published in metrics.csv**: this report was first published before "
    "reports carried their data, and its store is gone. Its cells' configurations come from the grid file "
    "with the overrides the report states (every published cell id checked against it), its metrics from "
    "metrics.csv, its provenance from the report's provenance section; per-epoch logs, the metrics that were "
    "not headline metrics (normalised forms, per-class accuracies, calibration, standard errors), the "
    "evaluation's notes and any section drawn from other stores (scale checks) were not published and are "
    "absent; the report as first published is in the repository's history (`git log -- reports/{name}.md`).\n"
)


def store_from_legacy(assets: Path, report: Path, grid_file: Path, root: Path) -> CellStore:
    """A store at `root` from a report published with metrics.csv only: each cell's config from the grid file
    with the report's stated overrides (the ids must be those of metrics.csv), its headline metrics from
    metrics.csv, its provenance from the report's provenance section."""
    import re

    from benchmark.grid import load_grid
    from benchmark.runner.grid_run import grid_record

    text = report.read_text()
    run_with = re.search(r"\*\*Run with\*\* `([^`]*)`", text)
    overrides = [o.strip() for o in run_with.group(1).split("--override") if o.strip()] if run_with else []
    grid = load_grid(grid_file, overrides)
    values = pd.read_csv(assets / "metrics.csv", dtype={"cell": str})
    by_id = {cell.id: cell for cell in grid.cells}
    unknown = sorted(set(values["cell"]) - set(by_id))
    if unknown:
        raise BenchError(
            f"{assets / 'metrics.csv'}: cells {', '.join(unknown[:3])} are not cells of {grid_file} with "
            f"{overrides or 'no overrides'}; the grid file changed since the report was published"
        )
    provenance = _legacy_provenance(text, values["cell"].nunique())
    store = CellStore(root)
    record = grid_record(grid)
    store.record_grid(grid.name, str(grid_file), record, tuple(overrides))
    for cell_id, part in values.groupby("cell", sort=False):
        cell = by_id[cell_id]
        metrics = dict(zip(part["metric"], part["value"].astype(float)))
        metrics["protocol"] = {"eval": cell.eval.model_dump(mode="json"), "legacy": "metrics.csv"}
        store.restore(cell_id, {**cell.resolved(), "provenance": provenance}, None, metrics, None)
    return store


def _legacy_provenance(text: str, cells: int) -> dict:
    """One provenance for every cell from a report's provenance section: its commits, devices and packages
    (joined where several), and its total compute shared out evenly."""
    import re

    def line(name: str) -> str:
        found = re.search(rf"^- {name}: (.*)$", text, re.MULTILINE)
        return found.group(1) if found else "not published"

    packages = dict(p.rsplit(" ", 1) for p in line("packages").split(", ") if " " in p)
    total = re.search(r"^- total compute: ([0-9.]+) min", text, re.MULTILINE)
    return {
        "git_commit": line("commits").replace("`", ""),
        "device": line("devices"),
        "packages": packages,
        "wall_seconds": float(total.group(1)) * 60 / cells if total else None,
    }


def is_legacy(assets: Path) -> bool:
    return not (assets / CELLS_FILE).is_file() and (assets / "metrics.csv").is_file()


def _lines(path: Path, keys: tuple[str, ...] = ("id", "status")) -> list[dict]:
    return [_json(path, n, text, keys) for n, text in enumerate(path.read_text().splitlines(), 1) if text.strip()]


def _json(path: Path, number: int, text: str, keys: tuple[str, ...]) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise BenchError(f"{path}: line {number} is not JSON ({err.msg})") from None
    missing = [k for k in keys if not isinstance(value, dict) or k not in value]
    if missing:
        raise BenchError(f"{path}: line {number} lacks {', '.join(missing)}")
    return value

"""What a report's sections share: the Report they read (computed once), their registry, and small
helpers for tables and the cells' stored files."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.fileio import write_text
from benchmark.registry import Registry
from benchmark.report.frame import CellFiles, GridCells
from benchmark.report.summary import latex_table
from benchmark.store import CellStore

# The axis whose levels are conditioning mechanisms (models/conditioning.py): figures colour by it, the image
# grids of a large grid keep each of its levels, latent figures are drawn per level (t-SNE: none vs concat).
MECHANISM_AXIS = "conditioning"


@dataclass
class Report:
    """What the sections of one report read, computed once: the grid, its cells' files (read from the store
    once), their frame, the paired comparisons; the store itself only for images and checkpoints."""

    store: CellStore
    grid: GridCells
    files: dict[str, CellFiles]
    frame: pd.DataFrame
    metrics: list[str]  # the headline metrics some done cell holds
    ranked: list[str]  # those findings are written on
    through_q: list[str]  # ranked metrics measured through q(z|x,c) of an image task (report/comparability.py)
    found: list  # every paired comparison, Holm-corrected once for the report
    logs: pd.DataFrame  # every done cell's epoch records
    assets: Path  # the report's folder being written
    data_dir: Path | None
    published_folder: Path  # the report's folder as published: its images are kept where the store has none
    scale_checks: tuple[CellStore, ...]

    @property
    def axes(self) -> list[str]:
        return self.grid.axes


Section = Callable[[Report], str]


# A report's sections in the order they appear; each returns its markdown, or "" where it has nothing to say.
# A new section is a function registered with SECTIONS.register (the built-in ones: report/sections.py).
SECTIONS: Registry[Section] = Registry("report section", "benchmark.report.sections")


def markdown_table(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


def report_table(table: pd.DataFrame, assets: Path, name: str, caption: str) -> str:
    """A report table: markdown in the report and the same table as booktabs LaTeX beside it, linked."""
    write_text(assets / f"{name}.tex", latex_table(table, caption))
    return markdown_table(table) + f"\nAs LaTeX: [{assets.name}/{name}.tex]({assets.name}/{name}.tex).\n"


def overridden_text(grid: GridCells) -> str:
    return f"; run with {override_options(grid)}" if grid.overrides else ""


def override_options(grid: GridCells) -> str:
    return "`" + " ".join(f"--override {assignment}" for assignment in grid.overrides) + "`"


def first_done(files: dict[str, CellFiles], frame: pd.DataFrame) -> CellFiles | None:
    done = frame[frame["status"] == "done"]
    return files[done["cell"].iloc[0]] if len(done) else None


def first_metrics(files: dict[str, CellFiles], frame: pd.DataFrame) -> dict | None:
    first = first_done(files, frame)
    return first.metrics if first else None


def legacy_protocol(files: dict[str, CellFiles], frame: pd.DataFrame) -> bool:
    metrics = first_metrics(files, frame)
    return bool(metrics and metrics["protocol"].get("legacy"))


def stored_values(files: dict[str, CellFiles], cells: pd.DataFrame, metric: str) -> list:
    """A metric the frame does not hold (a per-class dict, reliability bins), from each cell's metrics.json;
    cells without it left out."""
    values = [(files[c].metrics or {}).get(metric) for c in cells["cell"]]
    return [v for v in values if v]


def sample_count(frame: pd.DataFrame) -> int | None:
    """The done cells' eval.n_samples (one per grid: the grid's eval settings), None if none recorded it."""
    samples = frame.loc[frame["status"] == "done", "n_samples"].dropna()
    return int(samples.iloc[0]) if len(samples) else None

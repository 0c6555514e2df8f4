"""Run a grid: skip done cells, claim each cell's lock, execute it, store the result.

A failed cell is recorded with its reason and the grid goes on. An interrupted
cell (Ctrl-C, kill -9) leaves a partial folder that the next run redoes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from benchmark.errors import BenchError
from benchmark.grid import Cell, Grid
from benchmark.runner.execute import CellResult, execute_cell
from benchmark.store import CellStatus, CellStore


@dataclass
class RunOptions:
    device: str = "auto"
    force: bool = False
    data_dir: Any = None
    max_cells: int | None = None


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
    """`--only KEY=VALUE`: keep cells whose field KEY equals VALUE (parsed as YAML)."""
    selected = list(cells)
    for text in only:
        key, sep, raw = text.partition("=")
        if not sep:
            raise BenchError(f"--only {text!r}: expected KEY=VALUE")
        fields = {**cells[0].config.model_dump(), "seed": None}
        if key not in fields:
            raise BenchError(f"--only {text!r}: unknown field {key!r}; valid: {', '.join(fields)}")
        value = yaml.safe_load(raw)
        selected = [c for c in selected if getattr(c.config, key) == value]
    return selected


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
    for cell in todo[: options.max_cells]:
        with store.claim(cell.id) as mine:
            if not mine:
                summary.busy.append(cell.id)
                continue
            progress.cell_started(cell)
            store.begin(cell.id, cell.resolved())
            result = _execute_isolated(cell, options, progress, execute)
            if result.failure:
                store.fail(cell.id, result.failure, result.provenance, result.log)
                summary.failed[cell.id] = result.failure
            else:
                store.finish(cell.id, result)
                summary.done.append(cell.id)
            progress.cell_finished(cell, "failed" if result.failure else "done")
    return summary


def _execute_isolated(cell: Cell, options: RunOptions, progress: Progress, execute) -> CellResult:
    """Run one cell; any error inside it becomes that cell's failure, never the grid's."""
    try:
        return execute(cell, options.device, options.data_dir, lambda record: progress.epoch(cell, record))
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as err:  # noqa: BLE001 - isolation is the point
        reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        return CellResult(cell.id, [], failure=reason)

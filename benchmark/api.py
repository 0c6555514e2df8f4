"""The Python API: the stable surface for scripts and notebooks. The `bench` commands do the same through
the same checks; what is not named here may change between versions.

    from benchmark import api

    grid = api.load_grid("ablations/smoke.yaml", overrides=["epochs=1"])
    api.run_grid(grid, "results/smoke", only=["backbone=mlp"])
    frame = api.results_frame("results/smoke")   # one row per cell, every scalar metric a column
    api.render_report("ablations/smoke.yaml", "results/smoke", "reports")

Bad input raises `benchmark.errors.BenchError` with the one-line message the command prints.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pandas as pd

from benchmark.errors import BenchError
from benchmark.grid import Grid
from benchmark.grid import load_grid as _load_grid
from benchmark.runner.grid_run import RunOptions, RunSummary, filter_cells
from benchmark.runner.grid_run import run_grid as _run_grid

__all__ = ["BenchError", "Grid", "RunSummary", "load_grid", "results_frame", "render_report", "run_grid"]


def load_grid(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Grid:
    """A grid file expanded into its cells; `overrides` as `bench run --override`, e.g. ["epochs=1"]."""
    return _load_grid(Path(path), [overrides] if isinstance(overrides, str) else list(overrides))


def run_grid(grid: Grid, results: str | Path, only: list[str] | tuple[str, ...] = (), **options) -> RunSummary:
    """Train and evaluate every cell of `grid` (those matching `only`, as `--only`) not yet done in the store
    `results`, as `bench run` does. `options`: the fields of `RunOptions` (device, workers, threads, executor,
    force, pack, data_dir, ...)."""
    from benchmark.runner.preflight import check_device, check_results_folder, check_run
    from benchmark.runner.tracking import check_tracking
    from benchmark.store import CellStore

    known = {f.name for f in fields(RunOptions)}
    for name in options:
        if name not in known:
            raise BenchError(f"run_grid: unknown option {name!r}; known: {', '.join(sorted(known))}")
    run = RunOptions(**options)
    if run.workers > 1 and run.executor not in ("local", "processes"):
        raise BenchError(
            f"run_grid: workers={run.workers} is for the local executor; with {run.executor}, set cpus_per_cell"
        )
    cells = filter_cells(grid.cells, [only] if isinstance(only, str) else list(only))
    check_results_folder(Path(results))
    check_device(run.device)
    check_run(grid, cells, Path(results), run.device, run.data_dir)
    check_tracking(run.tracking)
    return _run_grid(grid, cells, CellStore(results), run)


def results_frame(results: str | Path, grid: str | None = None) -> pd.DataFrame:
    """Every cell of every grid recorded in the store (or of the grid named `grid`), one row each: `grid`,
    `cell` (its id), `status`, the grid's axes, what the store records of it (epochs, images, wall time,
    convergence) and every scalar metric (NaN where not measured)."""
    from benchmark.report.frame import cells_frame, from_store_record
    from benchmark.runner.preflight import check_store

    store = check_store(Path(results))
    names = [grid] if grid is not None else store.grid_names()
    frames = [cells_frame(store, from_store_record(store, name)).assign(grid=name) for name in names]
    if not frames:
        raise BenchError(f"--results {results}: no grid has been run there yet")
    frame = pd.concat(frames, ignore_index=True)
    return frame[["grid", *[c for c in frame.columns if c != "grid"]]]


def render_report(
    grid_file: str | Path, results: str | Path, out: str | Path = "reports", force: bool = False, data_dir=None
) -> Path:
    """Render out/<grid>.md and its figures from the store, as `bench report --grid` does (refusing to replace
    a published report with one made from fewer cells unless `force`), and the indexes of `out`."""
    from benchmark.report.frame import done_cells, from_grid_file
    from benchmark.report.index import write_indexes
    from benchmark.report.publish import check_publishable
    from benchmark.report.render import render_report as _render
    from benchmark.runner.preflight import check_data_dir, check_results_folder, check_store

    store, out = check_store(Path(results)), Path(out)
    check_results_folder(out, "--out")
    check_data_dir(data_dir)
    spec = from_grid_file(store, Path(grid_file))
    check_publishable(spec.name, done_cells(store, spec), Path(results), out, force)
    path = _render(store, spec, out, data_dir)
    write_indexes(out)
    return path

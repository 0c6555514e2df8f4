"""`bench report`: render markdown reports (tables, comparisons, figures) from the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from benchmark.commands.common import DEFAULT_GRID, RESULTS, DataDir, Results, console
from benchmark.errors import BenchError
from benchmark.store import CellStore

Opt = typer.Option


def report(
    grid: Annotated[list[Path], Opt("--grid", help="Grid YAML (repeatable).")] = [],
    all_: Annotated[bool, Opt("--all", help="Every grid recorded in the store.")] = False,
    results: Results = RESULTS,
    out: Annotated[Path, Opt("--out", help="Where reports/<grid>.md and figures go.")] = Path("reports"),
    scale_check: Annotated[
        list[Path],
        Opt(
            "--scale-check",
            help="Another store with some of the same cells at another scale (e.g. fewer epochs): the report "
            "compares the rankings (repeatable).",
        ),
    ] = [],
    force: Annotated[
        bool, Opt("--force", help="Replace a published report even if it would drop cells the published one has.")
    ] = False,
    from_published: Annotated[
        bool,
        Opt(
            "--from-published",
            help="Render from the data published beside each report (reports/<grid>/cells.jsonl), not from a store.",
        ),
    ] = False,
    data_dir: DataDir = None,
) -> None:
    """Render markdown reports (tables, comparisons, figures) from the store; trains nothing.

    A report is written whole or not at all, and is not replaced by one made from fewer cells unless --force."""
    from benchmark.report.frame import done_cells, from_grid_file, from_store_record
    from benchmark.report.publish import check_publishable
    from benchmark.report.render import render_from_published, render_report
    from benchmark.runner.preflight import check_data_dir, check_results_folder, check_store

    if from_published:
        if all_ or scale_check or results != RESULTS:
            raise BenchError(
                "--from-published renders each --grid from its published data alone; drop --all, "
                "--results and --scale-check"
            )
        for path in grid or [DEFAULT_GRID]:
            console.print(f"wrote {render_from_published(path, out)}")
        _write_indexes(out)
        return
    for path in scale_check:
        if not (path / "grids").is_dir():
            raise BenchError(f"--scale-check {path}: not a cell store (no grids/ folder in it)")
    store = check_store(results)
    check_results_folder(out, "--out")
    check_data_dir(data_dir)
    if all_ and grid:
        raise BenchError("give either --all or --grid, not both")
    if all_:
        grids = [from_store_record(store, n) for n in store.grid_names()]
    else:
        grids = [from_grid_file(store, g) for g in grid or [DEFAULT_GRID]]
    if not grids:
        raise BenchError(f"--results {results}: no grid has been run there yet")
    for spec in grids:  # every report checked before any is written
        check_publishable(spec.name, done_cells(store, spec), results, out, force)
    others = tuple(CellStore(path) for path in scale_check)
    for spec in grids:
        console.print(f"wrote {render_report(store, spec, out, data_dir, others)}")
    _write_indexes(out)


def _write_indexes(out: Path) -> None:
    """The findings index and the README's list of published results, from the reports."""
    from benchmark.report.index import write_indexes

    for path in write_indexes(out):
        console.print(f"wrote {path}")

"""`bench store check` and `bench store restore`: the cell store itself."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from benchmark.commands.common import DEFAULT_GRID, RESULTS, GridFile, Results, console
from benchmark.errors import BenchError

app = typer.Typer(no_args_is_help=True, help="The cell store itself.")


@app.command("check")
def store_check(results: Results = RESULTS) -> None:
    """Verify every stored file of every cell (parse, keys, checksums); exit 1 if anything is damaged."""
    from benchmark.runner.preflight import check_store
    from benchmark.store import CellStatus

    store = check_store(results)
    states = {cell_id: store.status(cell_id) for cell_id in store.cell_ids()}
    damaged = [c for c, s in states.items() if s == CellStatus.DAMAGED]
    done = [c for c, s in states.items() if s == CellStatus.DONE]
    unverified = [c for c in done if not store.verified(c)]
    bad_grids = []
    for name in store.grid_names():
        try:
            store.grid_record(name)
        except BenchError as err:
            bad_grids.append(str(err))
    counts = ", ".join(f"{sum(s == k for s in states.values())} {k.value}" for k in CellStatus)
    grids = len(store.grid_names())
    console.print(f"{results}: {len(states)} cells: {counts}; {grids} grid record{'s' * (grids != 1)}", soft_wrap=True)
    if unverified:
        console.print(
            f"{len(unverified)} done cells were written before checksums: parsed and checked for their keys only",
            soft_wrap=True,
        )
    for cell_id in damaged:
        console.print(f"[red]damaged {cell_id}: {store.damage(cell_id)}", soft_wrap=True)
    for line in bad_grids:
        console.print(f"[red]damaged grid record {line}", soft_wrap=True)
    if damaged or bad_grids:
        console.print("bench run redoes damaged cells (their files are moved to damaged/ first, not deleted)")
        raise typer.Exit(1)


@app.command("restore")
def store_restore(
    grid: GridFile = None,
    results: Results = RESULTS,
    reports: Annotated[
        Path, typer.Option("--reports", help="The folder the report was published in (its <grid>/cells.jsonl).")
    ] = Path("reports"),
) -> None:
    """Put a published report's cells into the store, so that `bench run` goes on with the pending ones.

    A grid too long for one session or machine is run in parts: publish the report of the cells done so far
    (with its data), restore them into a store elsewhere or later, run the grid there, and report all of
    them. Cells the store already holds are never touched; restored cells have no checkpoints, so
    `bench evaluate` and `bench perf sample` pass them over."""
    from benchmark.grid import load_grid
    from benchmark.report.published_data import read_published, restore_published
    from benchmark.runner.evaluate_stage import is_stale
    from benchmark.runner.grid_run import grid_record
    from benchmark.runner.preflight import check_results_folder
    from benchmark.store import CellStore

    path = grid or DEFAULT_GRID
    published = read_published(reports / load_grid(path).name)
    try:
        spec = load_grid(path, list(published.overrides))
    except BenchError as err:
        where = published.assets / "grid.json"
        raise BenchError(f"{where}: the published run's overrides no longer fit {path}: {err}") from None
    check_results_folder(results)
    store = CellStore(results)
    summary = restore_published(published, spec, store)
    store.record_grid(spec.name, spec.source, grid_record(spec), spec.overrides)
    console.print(
        f"{spec.name}: restored {len(summary.restored)} cells from {published.assets / 'cells.jsonl'} into "
        f"{results}; {len(summary.held)} already there (left as they are), {len(summary.busy)} busy in another run",
        soft_wrap=True,
    )
    if summary.not_in_grid:
        shown = ", ".join(summary.not_in_grid[:3]) + (", ..." if len(summary.not_in_grid) > 3 else "")
        console.print(
            f"[yellow]{len(summary.not_in_grid)} published cells are not cells of {path} as it is now ({shown}): "
            "the file changed since the report was published; left out",
            soft_wrap=True,
        )
    by_id = {cell.id: cell for cell in spec.cells}
    stale = [cell_id for cell_id in summary.restored if is_stale(store, by_id[cell_id])]
    if stale:
        console.print(
            f"[yellow]{len(stale)} restored cells were measured under an older evaluation protocol and have no "
            "checkpoint to measure again: retrain them (bench run --force --only ...) to measure them anew",
            soft_wrap=True,
        )
    again = "".join(f" --override {o}" for o in published.overrides)
    console.print(f"go on with: bench run --grid {path} --results {results}{again}", soft_wrap=True)

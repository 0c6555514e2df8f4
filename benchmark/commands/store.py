"""`bench store check`: the cell store itself."""

from __future__ import annotations

import typer

from benchmark.commands.common import RESULTS, Results, console
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

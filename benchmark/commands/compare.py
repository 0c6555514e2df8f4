"""`bench compare`: the same cells in two stores side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from benchmark.commands.common import console
from benchmark.errors import BenchError

Opt = typer.Option


def compare(
    store_a: Annotated[Path, typer.Argument(help="The store compared against (A).")],
    store_b: Annotated[Path, typer.Argument(help="The store compared (B).")],
    grid: Annotated[Path, Opt("--grid", help="Grid YAML: the cells compared.")],
    metric: Annotated[
        list[str] | None,
        Opt("--metric", help="A metric to compare (repeatable; default: every metric with a tolerance)."),
    ] = None,
    csv: Annotated[Path | None, Opt("--csv", help="Also write every row to this CSV file.")] = None,
) -> None:
    """The same cells in two stores (another machine, commit or scale) side by side: B - A per metric and
    whether it exceeds the `bench reproduce` tolerance; exit 1 if any does or B lacks a cell A has."""
    import pandas as pd

    from benchmark.fileio import atomic_write
    from benchmark.report.frame import from_grid_file
    from benchmark.runner.preflight import check_output_file, check_store
    from benchmark.runner.reference import axes_label, check_metric_names, compare_stores

    metrics = check_metric_names(metric or [])
    a, b = check_store(store_a, "STORE_A"), check_store(store_b, "STORE_B")
    if csv is not None:
        check_output_file(csv, "--csv", ".csv")
    spec = from_grid_file(a, grid)  # the cells as A ran them (its recorded overrides), else as the file says
    cells = [(axes_label(c["axes"]), c["id"]) for c in spec.cells]
    result = compare_stores(cells, a, b, metrics)
    if not result.compared and not result.missing:
        raise BenchError(f"--grid {grid}: none of its {len(cells)} cells is done in STORE_A {a.root}; nothing compared")
    for name in metric or []:
        if not any(r.metric == name for r in result.rows):
            raise BenchError(f"--metric {name}: no cell holds it as one number (a list or per-class value?)")
    for line in result.notes:
        console.print(f"[yellow]{line}", soft_wrap=True)
    for line in result.missing:
        console.print(f"[red]missing: {line}", soft_wrap=True)
    beyond = [r for r in result.rows if r.beyond]
    shown = result.rows if len(result.rows) <= 60 else beyond
    if shown:
        table = Table("cell", "metric", "A", "B", "B - A", "allowed", "beyond", title=f"{spec.name}: B against A")
        for r in shown:
            values = (_number(v) for v in (r.a, r.b, r.difference, r.allowed))
            table.add_row(r.cell, r.metric, *values, "yes" * r.beyond)
        console.print(table)
    if csv is not None:
        frame = pd.DataFrame([{**vars(r), "difference": r.difference, "beyond": r.beyond} for r in result.rows])
        atomic_write(csv, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.10g"))
    console.print(
        f"{len(result.compared)} cells and {len(result.rows)} metric values compared, "
        f"{len(beyond)} beyond tolerance, {len(result.missing)} done in A and missing in B"
        + (" (only those beyond shown; every row: --csv)" if shown is beyond and result.rows else "")
        + (f"; wrote {csv}" if csv is not None else "")
    )
    if beyond or result.missing:
        raise typer.Exit(1)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"

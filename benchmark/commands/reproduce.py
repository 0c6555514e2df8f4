"""`bench reproduce`: a grid's stored metrics against committed reference values."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from benchmark.commands.common import DEFAULT_GRID, RESULTS, Results, console

Opt = typer.Option


def reproduce(
    grid: Annotated[Path, Opt("--grid", help="Grid YAML.")] = DEFAULT_GRID,
    reference: Annotated[Path | None, Opt("--reference", help="Reference JSON (default: beside the grid).")] = None,
    results: Results = RESULTS,
    write: Annotated[bool, Opt("--write", help="Write the reference from the store instead.")] = False,
) -> None:
    """Check a grid's stored metrics against committed reference values; exit 1 on drift."""
    from benchmark.grid import load_grid
    from benchmark.runner.preflight import check_output_file, check_store
    from benchmark.runner.reference import compare_with_reference, write_reference

    spec = load_grid(grid)
    path = reference or grid.with_suffix(".reference.json")
    store = check_store(results)
    if write:
        check_output_file(path, "--reference", ".json")
        write_reference(spec, store, path)
        console.print(f"wrote {path}")
        return
    problems = compare_with_reference(spec, store, path)
    for line in problems:
        console.print(f"[red]drift: {line}", soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    console.print(f"{spec.name}: all {len(spec.cells)} cells match {path} within its tolerances")

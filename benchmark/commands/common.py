"""What the commands share: the console, the option types declared once, and reading a grid."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from benchmark.errors import BenchError
from benchmark.grid import Grid, load_grid, single_cell_grid

# Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns; give them room.
console = Console() if Console().is_terminal else Console(width=200)

DEFAULT_GRID = Path("ablations/smoke.yaml")

GridFile = Annotated[Path | None, typer.Option("--grid", help="Grid YAML (default: ablations/smoke.yaml).")]
Overrides = Annotated[list[str], typer.Option("--override", help="As given to bench run.")]
Only = Annotated[list[str], typer.Option("--only", help="Keep cells with KEY=VALUE (repeatable).")]
Results = Annotated[Path, typer.Option("--results", help="Cell store folder.")]
Device = Annotated[str, typer.Option("--device", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")]
DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (default: $BENCH_DATA_DIR, else the user cache).")
]
RESULTS = Path("results")

PROGRESS_COLUMNS = (
    TextColumn("{task.description}"),
    BarColumn(),
    MofNCompleteColumn(),
    TimeElapsedColumn(),
    TextColumn("eta"),
    TimeRemainingColumn(),
)


def resolve_grid(grid_file: Path | None, assignments: list[str], overrides: list[str] | None = None) -> Grid:
    if assignments and grid_file:
        raise BenchError("give either --grid or --set, not both")
    if assignments:
        return single_cell_grid(assignments)
    return load_grid(grid_file or DEFAULT_GRID, overrides)


def given_fields(options: type, arguments: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The fields of an options dataclass that a command's arguments set: the arguments named `prefix` +
    field, those not None (left out, the field keeps its default); paths as strings."""
    given = {}
    for field in dataclasses.fields(options):
        value = arguments.get(prefix + field.name)
        if value is not None:
            given[field.name] = str(value) if isinstance(value, Path) else value
    return given

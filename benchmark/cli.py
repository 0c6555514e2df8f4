"""The `bench` command line. Each command is a thin layer over a package function."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from benchmark import __version__
from benchmark.errors import BenchError

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="CVAE Bench: train, measure and compare conditional VAEs over ablation grids.",
)
data_app = typer.Typer(no_args_is_help=True, help="Inspect data sets.")
app.add_typer(data_app, name="data")
console = Console()

DataDirOption = typer.Option(
    None, "--data-dir", help="Data directory (default: $BENCH_DATA_DIR, else the user cache)."
)


def _version(value: bool) -> None:
    if value:
        console.print(f"bench {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """CVAE Bench."""


@data_app.command("check")
def data_check(data_dir: Path = DataDirOption) -> None:
    """Counts, shapes, checksums and mean pixel value of every data set found."""
    from benchmark import paths
    from benchmark.data.check import check_data_dir

    root = paths.data_dir(data_dir)
    rows = check_data_dir(root)
    if not rows:
        raise BenchError(f"{root}: no data set found (expected fashion-mnist/, mnist/, coco-mini/)")
    table = Table(title=f"Data sets in {root}")
    for column in ("data set", "split", "images", "shape", "captions", "mean pixel", "checksum"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r.dataset,
            r.split,
            "-" if r.images is None else f"{r.images:,}",
            r.shape,
            "-" if r.captions is None else f"{r.captions:,}",
            "-" if r.mean_pixel is None else f"{r.mean_pixel:.4f}",
            r.checksum if r.checksum == "OK" or r.checksum.startswith("OK ") else f"[red]{r.checksum}",
        )
    console.print(table)
    for r in rows:
        if r.error:
            console.print(f"[red]{r.dataset} {r.split}: {r.error}", soft_wrap=True)
    if any(r.error or "MISMATCH" in r.checksum or "missing" in r.checksum for r in rows):
        raise typer.Exit(1)


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    try:
        app()
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)

"""`bench data`: inspect data sets, and export the suite's binarisation for another project's code."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from benchmark.commands.common import DataDir, console
from benchmark.errors import BenchError

app = typer.Typer(no_args_is_help=True, help="Inspect data sets.")
Opt = typer.Option


@app.command("check")
def data_check(data_dir: DataDir = None) -> None:
    """Counts, shapes, checksums and mean pixel value of every data set found."""
    from benchmark import paths
    from benchmark.data.check import check_data_dir, expected_folders

    root = paths.data_dir(data_dir)
    rows = check_data_dir(root)
    if not rows:
        raise BenchError(f"{root}: no data set found (expected {expected_folders()})")
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


@app.command("export-amat")
def data_export_amat(
    out: Annotated[Path, Opt("--out", help="Folder for binarized_<data set>_{train,valid,test}.amat.")],
    dataset: Annotated[str, Opt("--dataset", help="A grey 28 px data set (mnist, fashion_mnist).")] = "mnist",
    val_size: Annotated[int, Opt("--val-size", min=0, help="The validation split, as cells hold it out.")] = 10_000,
    data_dir: DataDir = None,
) -> None:
    """Write the suite's fixed binarisation in Larochelle's .amat format, for another project's own code."""
    from benchmark.data.datasets import DATASETS
    from benchmark.data.export import export_binarized
    from benchmark.runner.preflight import check_data_dir, check_results_folder

    if DATASETS[dataset].channels != 1:
        raise BenchError(
            f"--dataset {dataset}: has {DATASETS[dataset].channels} channels; binarisation is for grey data"
        )
    check_results_folder(out, "--out")
    check_data_dir(data_dir)
    for path in export_binarized(dataset, val_size, out, data_dir):
        console.print(f"wrote {path}")

"""`bench instrument`: the measuring instruments shipped with the package."""

from __future__ import annotations

from typing import Annotated

import typer

from benchmark.commands.common import DataDir, console

app = typer.Typer(no_args_is_help=True, help="The measuring instruments shipped with the package.")


@app.command("train")
def instrument_train(
    dataset: Annotated[str, typer.Option("--dataset", help="Data set whose domain classifier to build.")],
    data_dir: DataDir = None,
) -> None:
    """Train a new domain classifier (fixed recipe) and make it the data set's instrument, under a new key.

    Metrics measured with it are not comparable with those of the previous instrument; reports say so."""
    from benchmark.data.datasets import DATASETS
    from benchmark.metrics.classifier import train_instrument
    from benchmark.runner.preflight import check_data_dir

    DATASETS[dataset]  # an unknown name is one line naming the known ones
    check_data_dir(data_dir)
    entry = train_instrument(dataset, data_dir)
    console.print(f"{dataset}: {entry['file']} sha256 {entry['sha256']} test accuracy {entry['test_accuracy']:.4f}")

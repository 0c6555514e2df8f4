"""`bench sample`: a grid of samples from a trained cell (benchmark/sampling.py does the drawing)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from benchmark.commands.common import RESULTS, DataDir, Results, console

Opt = typer.Option
MAX_SAMPLES = 1024  # one PNG grid; 1024 RGB 256 px samples are about 0.8 GB of floats


def sample(
    cell: Annotated[str, Opt("--cell", help="Cell id (see bench status).")],
    text: Annotated[str | None, Opt("--text", help="A short text naming a class, or a caption for text cells.")] = None,
    label: Annotated[int | None, Opt("--label", help="A class index.")] = None,
    image: Annotated[
        str | None, Opt("--image", help="Image-task cells: the test image to complete, test:INDEX.")
    ] = None,
    n: Annotated[int, Opt("-n", min=1, max=MAX_SAMPLES, help=f"Number of samples (at most {MAX_SAMPLES}).")] = 16,
    seed: Annotated[int, Opt("--seed", min=0, help="Noise seed.")] = 0,
    out: Annotated[Path, Opt("--out", help="PNG to write.")] = Path("samples.png"),
    scale: Annotated[
        int | None,
        Opt("--scale", min=1, max=16, help="Enlarge by this factor (default: to at least 112 px per image)."),
    ] = None,
    results: Results = RESULTS,
    data_dir: DataDir = None,
) -> None:
    """Draw a grid of samples from a trained cell for a text or a label, or completions of a test image."""
    from benchmark.runner.preflight import check_data_dir, check_output_file, check_store
    from benchmark.sampling import sample_grid

    check_output_file(out, "--out", ".png")
    check_data_dir(data_dir)
    console.print(sample_grid(check_store(results), cell, text, label, n, seed, out, data_dir, scale, image))

"""The suite's fixed binarisation of a grey data set, written in Larochelle's `.amat` text format (one image
a line, 0/1 pixels separated by spaces), so that another project's own code (pythae's reproduction
scripts read binarized_mnist_{train,valid,test}.amat) trains and measures on exactly the images the
suite's cells see: the same draw, the same validation split, the same test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.data.binarize import binarized
from benchmark.data.datasets import load_dataset
from benchmark.fileio import atomic_write


def export_binarized(dataset: str, val_size: int, out: Path, data_dir=None) -> list[Path]:
    bundle = binarized(load_dataset(dataset, 28, data_dir), "fixed").hold_out_validation(val_size)
    splits = {"train": bundle.train, "valid": bundle.validation, "test": bundle.test}
    written = []
    for name, split in splits.items():
        if split is None:
            continue
        pixels = (split.images.flatten(1) > 0).numpy().astype(np.uint8)
        path = Path(out) / f"binarized_{dataset}_{name}.amat"
        atomic_write(path, lambda tmp, pixels=pixels: np.savetxt(tmp, pixels, fmt="%d"))
        written.append(path)
    return written

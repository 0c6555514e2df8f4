"""Whole-run checks, made once before any cell is claimed: a problem with the device, the data,
a text encoder, a model's size or the results folder is one user error (exit 2), not the same
failure recorded on every cell, and nothing in the store is touched.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from benchmark import paths
from benchmark.errors import BenchError
from benchmark.grid import Cell, Grid
from benchmark.models.cost import parameter_count_of
from benchmark.store import CellStore
from benchmark.store.cells import GRIDS

# Training holds each parameter four times in fp32: the weight, its gradient and Adam's two moments.
TRAINING_BYTES_PER_PARAMETER = 16


def check_device(name: str) -> torch.device:
    """`--device`: auto, cpu, cuda or cuda:N, and present on this machine."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise BenchError(f"--device {name!r}: not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise BenchError(f"--device {name}: CUDA is not available on this machine; use --device cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise BenchError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise BenchError(f"--device {name!r}: only cpu and cuda devices are supported")
    return device


def check_results_folder(results: Path, option: str = "--results") -> None:
    """A folder this process writes (the store, a report folder) is a folder, or can become one, and writable."""
    results = Path(results)
    if results.exists() and not results.is_dir():
        raise BenchError(f"{option} {results}: is a file, not a folder")
    existing = results
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise BenchError(f"{option} {results}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BenchError(f"{option} {results}: {existing} is not writable")


def check_store(results: Path, option: str = "--results") -> CellStore:
    """A store that a command reads (evaluate, report, reproduce, sample, compare): it must exist; a typo is
    an error, not an empty store. `option`: how the command names it in an error."""
    results = Path(results)
    if not results.exists():
        raise BenchError(f"{option} {results}: no such folder (no cell store there)")
    if not results.is_dir():
        raise BenchError(f"{option} {results}: is a file, not a cell store")
    store = CellStore(results)
    if not (results / GRIDS).is_dir() and not store.cell_ids():
        raise BenchError(f"{option} {results}: not a cell store (no {GRIDS}/ folder and no cells in it)")
    return store


def check_output_file(path: Path, option: str, suffix: str | None = None) -> None:
    """A file a command writes: not a folder, its folder not a file, and named for what it holds."""
    path = Path(path)
    if path.is_dir():
        raise BenchError(f"{option} {path}: is a folder; give a file name")
    if suffix and path.suffix.lower() != suffix:
        raise BenchError(f"{option} {path}: writes a {suffix[1:].upper()} file; give a name ending in {suffix}")
    check_results_folder(path.parent, option)


def check_data_dir(data_dir) -> None:
    """An explicit data folder (--data-dir or $BENCH_DATA_DIR) must exist; the default one is created."""
    if data_dir or os.environ.get("BENCH_DATA_DIR"):
        root = paths.data_dir(data_dir)
        where = "--data-dir" if data_dir else "$BENCH_DATA_DIR"
        if not root.is_dir():
            raise BenchError(f"{where} {root}: no such folder")


def check_data(cells: list[Cell], data_dir) -> None:
    """Every data set the cells use, at each size, is present and intact (checksums)."""
    from benchmark.data import load_dataset

    check_data_dir(data_dir)
    for dataset, size in sorted({(c.config.dataset, c.config.image_size) for c in cells}):
        bundle = load_dataset(dataset, size, data_dir)
        sizes = {
            (c.config.val_size, c.config.train_size or 0)
            for c in cells
            if (c.config.dataset, c.config.image_size) == (dataset, size)
        }
        for val_size, train_size in sorted(sizes):
            left = len(bundle.hold_out_validation(val_size).train)
            if train_size > left:
                raise BenchError(
                    f"val_size {val_size} leaves {left} {dataset} training images, fewer than train_size {train_size}"
                )


def check_text_encoders(cells: list[Cell]) -> None:
    from benchmark.conditions.clip_text import text_encoder

    for spec, normalize in sorted(
        {(c.config.text_encoder, c.config.text_normalize) for c in cells if c.config.text_encoder}
    ):
        text_encoder(spec, normalize)


def memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_model_sizes(grid: Grid, cells: list[Cell], device: torch.device) -> None:
    available = memory_bytes(device)
    for cell in cells:
        count = parameter_count_of(cell.config)  # cached per model shape
        needed = count * TRAINING_BYTES_PER_PARAMETER
        if needed > available:
            where = ", ".join(f"{k}={v}" for k, v in cell.axis_values)
            raise BenchError(
                f"{grid.source}: cell {where}: the model has {count:,} parameters, which need "
                f"{needed / 2**30:,.1f} GiB to train (weights, gradients and Adam state in fp32), more than the "
                f"{available / 2**30:,.1f} GiB of {device.type} memory here; "
                "make latent_dim, hidden or embed_dim smaller"
            )


def check_run(grid: Grid, cells: list[Cell], results: Path, device_name: str, data_dir) -> None:
    check_results_folder(results)
    device = check_device(device_name)
    check_model_sizes(grid, cells, device)
    check_text_encoders(cells)
    check_data(cells, data_dir)

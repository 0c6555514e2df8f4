"""How fast a trained cell generates images: wall time per image of its own sampler (`model.sample`: a draw
from the prior and one decoder pass for the VAE family; for the VQ-VAE a code grid drawn position by
position from its autoregressive prior, then decoded), measured on one CPU thread so that cells measured
at different times compare, and recorded beside the cell's files (store.record_sample_timing)."""

from __future__ import annotations

import os
import statistics
import time

import torch

from benchmark.runner.provenance import cpu_name
from benchmark.store import CellStatus, CellStore
from benchmark.store.cells import CHECKPOINT
from benchmark.training.trainer import load_stored_cell

THREADS = 1  # as bench run's cells train (--threads 1): one core per cell


def time_cell_sampling(store: CellStore, cell_id: str, data_dir, images: int, batch: int, repeats: int) -> dict:
    """The median over `repeats` of the seconds to generate `images` images (rounded up to whole batches of
    `batch`, after one warm-up batch), per image; conditions cycle through the classes (or the first test
    conditions)."""
    trained = load_stored_cell(store, cell_id, data_dir)
    model, conditions = trained.model.eval(), _conditions(trained, batch)
    generator = torch.Generator().manual_seed(0)
    load = os.getloadavg()[0]  # what else ran (this process's last cell included): a busy machine is slower
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        model.sample(conditions, generator)  # warm-up: allocation, lazy initialisation
        batches = -(-images // len(conditions))  # a text set may have fewer test conditions than `batch`
        generated = batches * len(conditions)
        runs = [_seconds(model, conditions, generator, batches) / generated for _ in range(repeats)]
    finally:
        torch.set_num_threads(previous)
    return {
        "ms_per_image": 1000 * statistics.median(runs),
        "runs_ms_per_image": [1000 * r for r in runs],
        "images": generated,
        "batch": len(conditions),
        "threads": THREADS,
        "load_average": load,
        "device": "cpu",
        "cpu": cpu_name(),
        "torch": torch.__version__,
        "sampler": model.sampler,
    }


def _conditions(trained, batch: int) -> torch.Tensor:
    classes = trained.conditions.source.num_classes
    if classes:
        return torch.arange(batch) % classes
    return trained.conditions.test[:batch]


def _seconds(model, conditions: torch.Tensor, generator: torch.Generator, batches: int) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(batches):
            model.sample(conditions, generator)
    return time.perf_counter() - start


def time_grid_sampling(store: CellStore, cell_ids: list[str], data_dir, images: int, batch: int, repeats: int):
    """Measure and record every done cell of `cell_ids` that has a checkpoint; yields (cell id, timing)."""
    for cell_id in cell_ids:
        if store.status(cell_id) != CellStatus.DONE or not (store.cell_dir(cell_id) / CHECKPOINT).exists():
            continue
        with store.claim(cell_id) as claimed:  # a run redoing the cell meanwhile: its new model is not timed
            if not claimed or store.status(cell_id) != CellStatus.DONE:
                continue
            timing = time_cell_sampling(store, cell_id, data_dir, images, batch, repeats)
            store.record_sample_timing(cell_id, timing)
        yield cell_id, timing

"""`bench plan`: what a grid will cost on this machine before any cell trains, and (given a pilot store)
how many seeds its question needs.

Training time of a pending cell = its FLOPs per image (one training step, forward and backward, counted by
torch's FlopCounterMode) x the images it processes (every epoch's training images, plus a forward pass, a
third of a step, over its validation split and learning-curve images) / the FLOP rate this machine reached
on a short timed run of its model family (backbone, image size, batch size) at the threads a worker gets.
The epoch budget is an upper bound where early stopping may end a cell sooner; a pilot store of the same
grid gives the epochs its cells of each family actually ran, and their evaluation seconds.

Seeds: for each question metric, every pair of levels of the question's axis in the pilot, the fewest
seeds with which the paired test (80% power, level 0.05 / family size: the threshold of Holm's first
step) detects a difference of `effect` x the metric's mean, at the pilot's spread of paired differences.
"""

from __future__ import annotations

import functools
import math
import statistics
import time
from dataclasses import dataclass

import torch

from benchmark.data import load_dataset
from benchmark.grid import Cell, Grid
from benchmark.models.cost import training_flops_per_image
from benchmark.models.loss import cvae_loss
from benchmark.report.frame import cells_frame, from_store_record
from benchmark.report.stats import ALPHA, comparisons, pairs_needed
from benchmark.store import CellStatus, CellStore
from benchmark.training.trainer import build_seeded_model, cell_data, prepare_conditions

FORWARD_SHARE = 1 / 3  # a forward pass costs about a third of a training step (forward + backward)
MIN_TIMED_SECONDS = 1.0  # the timed run of a family lasts at least this long, after two warm-up steps


def family(cell: Cell) -> tuple:
    """Cells whose training kernels run alike: one timed run each."""
    c = cell.config
    return (c.backbone, c.image_size, c.batch_size, c.dataset)


@dataclass(frozen=True)
class CellEstimate:
    cell: Cell
    flops_per_image: float  # one training step per image
    train_images: int  # per epoch
    forward_images: int  # per epoch: validation split and learning curve, forward only
    epochs: int  # the budget
    flop_rate: float  # FLOP/s its family reached on this machine
    pilot_epochs: float | None = None  # mean epochs its family ran in the pilot
    pilot_eval_seconds: float | None = None  # mean evaluation seconds of its family in the pilot

    def epoch_seconds(self) -> float:
        work = self.train_images + FORWARD_SHARE * self.forward_images
        return work * self.flops_per_image / self.flop_rate

    def train_seconds(self, epochs: float | None = None) -> float:
        return self.epoch_seconds() * (self.epochs if epochs is None else epochs)


def estimate_cells(
    cells: list[Cell], threads: int, pilot: CellStore | None = None, grid: Grid | None = None, data_dir=None
) -> list[CellEstimate]:
    """An estimate for each cell, one timed run per family (torch threads = `threads` while timing)."""
    pilot_rows = _pilot_by_family(pilot, grid, cells) if pilot is not None else {}
    rates: dict[tuple, float] = {}
    flops: dict = {}  # per model: the seed changes no FLOP
    estimates = []
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for cell in cells:
            shape = cell.config.model_copy(update={"seed": 0})
            key = family(cell)
            if shape not in flops or key not in rates:
                x, c, model = _batch_and_model(cell, data_dir)
                flops[shape] = training_flops_per_image(model, x[:8], c[:8], cell.config.recon_loss)
                if key not in rates:
                    rates[key] = _timed_images_per_second(model, x, c, cell) * flops[shape]
            train, forward = _images_per_epoch(cell, data_dir)
            epochs, eval_seconds = pilot_rows.get(key, (None, None))
            estimates.append(
                CellEstimate(cell, flops[shape], train, forward, cell.config.epochs, rates[key], epochs, eval_seconds)
            )
    finally:
        torch.set_num_threads(previous)
    return estimates


def _batch_and_model(cell: Cell, data_dir):
    """A training batch of the cell's own data and conditions, and its model as the trainer builds it."""
    config = cell.config
    bundle = cell_data(config, data_dir)
    conditions = prepare_conditions(config, bundle)
    size = min(config.batch_size, len(bundle.train))
    x = bundle.train.images[:size].float() / 255
    c = conditions.train(torch.Generator().manual_seed(0))[:size]
    return x, c, build_seeded_model(config, conditions, torch.device("cpu"))


def _timed_images_per_second(model, x, c, cell: Cell) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=cell.config.lr)
    generator = torch.Generator().manual_seed(0)

    def step() -> None:
        logits, kl = model(x, c, generator=generator)
        loss = cvae_loss(logits, x, kl, cell.config.recon_loss, cell.config.beta).total
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    model.train()
    for _ in range(2):
        step()
    steps, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < MIN_TIMED_SECONDS or steps < 3:
        step()
        steps += 1
    return steps * len(x) / elapsed


def _images_per_epoch(cell: Cell, data_dir) -> tuple[int, int]:
    """Training images of an epoch, and the images it only runs forward (validation split, learning curve)."""
    config = cell.config
    available = _train_split_size(config.dataset, config.image_size, data_dir) - config.val_size
    train = available if config.train_size is None else min(config.train_size, available)
    return train, config.val_size + config.curve_size


@functools.cache
def _train_split_size(dataset: str, image_size: int, data_dir) -> int:
    return len(load_dataset(dataset, image_size, data_dir).train)


def _pilot_by_family(pilot: CellStore, grid: Grid | None, cells: list[Cell]) -> dict[tuple, tuple]:
    """Per family: the mean epochs the pilot's done cells of this grid ran, and their evaluation seconds."""
    if grid is None or pilot.grid_record(grid.name) is None:
        return {}
    frame = cells_frame(pilot, from_store_record(pilot, grid.name))
    done = frame[frame["status"] == "done"]
    by_family: dict[tuple, tuple] = {}
    for cell in cells:
        key = family(cell)
        same = done
        for field, value in zip(("backbone", "image_px"), key[:2]):
            column = field if field in same else None
            if column:
                same = same[same[column] == value]
        if key in by_family or same.empty:
            continue
        epochs = same["epochs_run"].dropna()
        by_family[key] = (
            float(epochs.mean()) if len(epochs) else None,
            float(same["eval_seconds"].dropna().mean()) if same["eval_seconds"].notna().any() else None,
        )
    return by_family


@dataclass(frozen=True)
class SeedsNeeded:
    metric: str
    mean: float  # over the pilot's done cells
    target: float  # the difference to detect: effect x |mean|
    pairs: int  # compared pairs of levels
    worst_spread: float  # the largest standard deviation of paired differences among them
    seeds: int | None  # the fewest seeds with which every pair detects `target` (None: more than the limit)
    pilot_seeds: int


def seeds_needed(pilot: CellStore, grid: Grid, effect: float) -> list[SeedsNeeded]:
    """For each question metric of `grid`, the seeds its question axis needs (from the pilot store's cells of
    the same grid)."""
    record = pilot.grid_record(grid.name)
    if record is None:
        raise ValueError(f"{pilot.root}: no grid named {grid.name!r} has been run there")
    recorded = from_store_record(pilot, grid.name)
    frame = cells_frame(pilot, recorded)
    axis, metrics = grid.spec.question.axis, grid.spec.question.metrics
    done = frame[frame["status"] == "done"]
    found = [c for c in comparisons(frame, recorded.axes, metrics) if c.axis == axis and c.n >= 2]
    rows = []
    for metric in metrics:
        pairs = [c for c in found if c.metric == metric and c.spread == c.spread]
        if not pairs or metric not in done:
            continue
        mean = float(done[metric].mean())
        target = effect * abs(mean)
        per_pair = []
        for c in pairs:
            needed = pairs_needed(target, c.spread, ALPHA / c.family)
            per_pair.append(None if needed is None else math.ceil(needed / (c.n / c.seeds)))
        seeds = None if None in per_pair else max(max(per_pair), 3)
        worst = max(c.spread for c in pairs)
        rows.append(SeedsNeeded(metric, mean, target, len(pairs), worst, seeds, int(done["seed"].nunique())))
    return rows


def total_seconds(estimates: list[CellEstimate], use_pilot: bool = True) -> float:
    """Cell time of the estimates: training at the pilot's epochs where it has them, else the budget, plus
    the pilot's evaluation seconds where it has them."""
    total = 0.0
    for e in estimates:
        total += e.train_seconds(e.pilot_epochs if use_pilot else None)
        total += (e.pilot_eval_seconds or 0.0) if use_pilot else 0.0
    return total


def pending(cells: list[Cell], store: CellStore) -> list[Cell]:
    return [c for c in cells if store.status(c.id) != CellStatus.DONE]


def median_rate(estimates: list[CellEstimate]) -> float:
    return statistics.median(e.flop_rate for e in estimates)

"""`bench plan`: what a grid will cost on this machine before any cell trains, and (given a pilot store)
how many seeds its question needs.

Training time of a pending cell = its FLOPs per image (one training step, forward and backward, counted by
torch's FlopCounterMode) x the images it processes (every epoch's training images, plus a forward pass, a
third of a step, over its validation split and learning-curve images) / the FLOP rate the trainer itself
reached on this machine in two short runs of the cell's model family (backbone, image size, batch size, data
set) at the threads a cell gets, plus the fixed cost of an epoch those runs show. Within a family the
rate is taken as constant, so a cell with more FLOPs takes proportionally longer: small models bound by
overheads, and elementwise work FLOPs do not count, run slower than that.

The epoch budget is an upper bound where early stopping may end a cell sooner. A pilot store where the same
grid ran gives, for each pending cell, the cells with the same axis values (any seed): the epochs they ran
where their budget and patience were the cell's, their evaluation seconds where their evaluation protocol
was the cell's.

Seeds: for each question metric (or the normalised form a report compares instead), every pair of levels of
the question's axis in the pilot, the fewest seeds with which the paired test (80% power, level 0.05 / the
number of comparisons of the metric's Holm family in the full grid) detects a difference of `effect` x the
metric's mean, at the pilot's spread of paired differences.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from benchmark.data import load_dataset
from benchmark.grid import Cell, Grid
from benchmark.perf.train_speed import flops_per_image
from benchmark.report.comparability import metrics_along
from benchmark.report.frame import cells_frame, from_store_record, read_cells
from benchmark.report.stats import ALPHA, MAX_SEEDS_SHOWN, MIN_SEEDS, compared_axes, comparisons, pairs_needed
from benchmark.store import CellStatus, CellStore
from benchmark.training.trainer import train_cell

FORWARD_SHARE = 1 / 3  # a forward pass costs about a third of a training step (forward + backward)
TIMED_IMAGES = 8192  # images per epoch of the longer of a family's two timed runs


def family(cell: Cell) -> tuple:
    """Cells whose training kernels run alike: one timed run each (the model too: a VQ-VAE's snapping and
    code prior are not the VAE's; the code prior's own training after the cell's is not estimated)."""
    c = cell.config
    return (c.model, c.backbone, c.image_size, c.batch_size, c.dataset)


@dataclass(frozen=True)
class CellEstimate:
    cell: Cell
    flops_per_image: float  # one training step per image
    train_images: int  # per epoch
    forward_images: int  # per epoch: validation split and learning curve, forward only
    epochs: int  # the budget
    flop_rate: float  # FLOP/s the trainer reached on its family on this machine
    epoch_overhead: float  # seconds an epoch of its family costs whatever its size
    pilot_epochs: float | None = None  # mean epochs its pilot cells ran (same budget and patience)
    pilot_eval_seconds: float | None = None  # mean evaluation seconds of its pilot cells (same protocol)

    def epoch_seconds(self) -> float:
        work = self.train_images + FORWARD_SHARE * self.forward_images
        return self.epoch_overhead + work * self.flops_per_image / self.flop_rate

    def train_seconds(self, epochs: float | None = None) -> float:
        return self.epoch_seconds() * (self.epochs if epochs is None else min(epochs, self.epochs))


def estimate_cells(
    cells: list[Cell], threads: int, pilot: CellStore | None = None, grid: Grid | None = None, data_dir=None
) -> list[CellEstimate]:
    """An estimate for each cell, the trainer timed once per family with `threads` torch threads."""
    pilot_cells = _pilot_cells(pilot, grid) if pilot is not None and grid is not None else {}
    rates: dict[tuple, float] = {}
    flops: dict = {}  # per model: the seed changes no FLOP
    estimates = []
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for cell in cells:
            shape = cell.config.model_copy(update={"seed": 0})
            if shape not in flops:
                flops[shape] = flops_per_image(cell.config, torch.device("cpu"), data_dir)
            key = family(cell)
            if key not in rates:
                per_image, overhead = _trainer_timing(cell, data_dir)
                rates[key] = (flops[shape] / per_image, overhead)
            rate, overhead = rates[key]
            train, forward = _images_per_epoch(cell, data_dir)
            epochs, eval_seconds = _from_pilot(cell, pilot_cells)
            estimates.append(
                CellEstimate(
                    cell, flops[shape], train, forward, cell.config.epochs, rate, overhead, epochs, eval_seconds
                )
            )
    finally:
        torch.set_num_threads(previous)
    return estimates


def _trainer_timing(cell: Cell, data_dir) -> tuple[float, float]:
    """Seconds per training image of the trainer itself on the cell's model, and the seconds an epoch costs
    whatever its size: the second epochs of two short runs, of TIMED_IMAGES / 4 and TIMED_IMAGES images,
    on a line (from one run of 2,048 images the fixed cost of an epoch made a conv cell look 1.5x slower than
    it trains at 20,000)."""
    available = _train_split_size(cell.config.dataset, cell.config.image_size, data_dir)
    sizes = [min(TIMED_IMAGES // 4, available // 2), min(TIMED_IMAGES, available)]
    seconds = []
    for size in sizes:
        timed = cell.config.model_copy(
            update={
                "train_size": size,
                "epochs": 2,
                "val_size": 0,
                "curve_size": 0,
                "patience": None,
                "select": "last",
                "schedule": "constant",
            }
        )
        seconds.append(train_cell(timed, device="cpu", data_dir=data_dir).log[1]["seconds"])
    per_image = max((seconds[1] - seconds[0]) / (sizes[1] - sizes[0]), seconds[1] / sizes[1] / 2)
    return per_image, max(0.0, seconds[1] - sizes[1] * per_image)


def _images_per_epoch(cell: Cell, data_dir) -> tuple[int, int]:
    """Training images of an epoch, and the images it only runs forward (validation split, learning curve)."""
    config = cell.config
    available = _train_split_size(config.dataset, config.image_size, data_dir) - config.val_size
    train = available if config.train_size is None else min(config.train_size, available)
    return train, config.val_size + config.curve_size


@functools.cache
def _train_split_size(dataset: str, image_size: int, data_dir) -> int:
    return len(load_dataset(dataset, image_size, data_dir).train)


def _axes_but_seed(axes: dict) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in axes.items() if k != "seed"))


def _pilot_cells(pilot: CellStore, grid: Grid) -> dict[tuple, list[dict]]:
    """The pilot's done cells of the grid, by their axis values less the seed: each one's stored config and
    the epochs and evaluation seconds it took."""
    if pilot.grid_record(grid.name) is None:
        return {}
    recorded = from_store_record(pilot, grid.name)
    files = read_cells(pilot, recorded)  # read once: the frame and the configs below
    frame = cells_frame(pilot, recorded, files).set_index("cell")
    found: dict[tuple, list[dict]] = {}
    for entry in recorded.cells:
        stored = files[entry["id"]]
        if stored.status != CellStatus.DONE:
            continue
        row = frame.loc[entry["id"]]
        summary = {"cell": stored.config["cell"], "eval": stored.config["eval"], "epochs_run": row["epochs_run"]}
        summary["eval_seconds"] = row["eval_seconds"]
        found.setdefault(_axes_but_seed(entry["axes"]), []).append(summary)
    return found


def _from_pilot(cell: Cell, pilot_cells: dict) -> tuple[float | None, float | None]:
    """The mean epochs run by the pilot's cells of the same axis values trained under the same budget and
    patience, and their mean evaluation seconds where their protocol was the cell's (None: no such cell)."""
    same = pilot_cells.get(_axes_but_seed(dict(cell.axis_values)), [])
    config, protocol = cell.config, cell.eval.model_dump(mode="json")
    trained = [
        s["epochs_run"]
        for s in same
        if s["cell"]["epochs"] == config.epochs
        and s["cell"].get("patience") == config.patience
        and s["epochs_run"] == s["epochs_run"]  # not NaN: the cell recorded a training summary
    ]
    measured = [s["eval_seconds"] for s in same if s["eval"] == protocol and s["eval_seconds"] == s["eval_seconds"]]
    return _mean(trained), _mean(measured)


def _mean(values: list[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None


@dataclass(frozen=True)
class SeedsNeeded:
    metric: str
    mean: float  # over the pilot's done cells
    target: float  # the difference to detect: effect x |mean|
    level_pairs: int  # pairs of levels of the axis compared
    worst_spread: float  # the largest standard deviation of paired differences among them
    seeds: int | None  # the fewest seeds with which every pair detects `target` (None: more than the limit)
    pilot_seeds: int
    note: str = ""  # why no number


def seeds_needed(pilot: CellStore, grid: Grid, effect: float) -> list[SeedsNeeded]:
    """For each metric the question of `grid` is answered on along its axis (a metric a report refuses along
    it replaced by its normalised form, as reports do), the seeds the axis needs, from the pilot store's cells
    of the same grid. A pilot of any number of seeds with at least two pairs per comparison will do."""
    recorded = from_store_record(pilot, grid.name)
    frame = cells_frame(pilot, recorded)
    question = grid.spec.question
    groups = compared_axes(frame, recorded.axes)
    axis = next((a for a, along in groups.items() if question.axis in (a, *along)), None)
    if axis is None:
        return []
    metrics, _ = metrics_along(frame, axis, groups[axis], question.metrics)
    family_kind = "all" if question.holm == "across_metrics" else "metric"
    found = comparisons(frame, recorded.axes, metrics, family_kind)
    done = frame[frame["status"] == "done"]
    seeds_there = int(done["seed"].nunique()) if "seed" in done else 1
    rows = []
    for metric in metrics:
        family = [c for c in found if (family_kind == "all" or c.metric == metric)]  # all tested in the full grid
        pairs = [c for c in found if c.axis == axis and c.metric == metric and c.n >= 2 and c.seeds]
        mean = float(done[metric].mean()) if metric in done else math.nan
        target = effect * abs(mean)
        usable = [c for c in pairs if c.spread == c.spread and c.spread > 0]
        if not usable or not target:
            why = "no pair of levels with a spread in the pilot" if not usable else "the mean is 0"
            rows.append(SeedsNeeded(metric, mean, target, len(pairs), math.nan, None, seeds_there, why))
            continue
        per_pair = []
        for c in usable:
            per_seed = c.n / c.seeds  # pairs each seed gives (one per combination of the other axes)
            limit = math.ceil(MAX_SEEDS_SHOWN * per_seed)
            needed = pairs_needed(target, c.spread, ALPHA / len(family), limit=limit)
            per_pair.append(None if needed is None else math.ceil(needed / per_seed))
        seeds = None if None in per_pair else max(*per_pair, MIN_SEEDS)
        worst = max(c.spread for c in usable)
        rows.append(SeedsNeeded(metric, mean, target, len(usable), worst, seeds, seeds_there))
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

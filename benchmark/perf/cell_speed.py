"""`bench perf cell`: a real grid cell trained the way `bench run` trains it, beside the trainer timed the
way `bench perf` times it, on the same configuration and in one run, so the two figures cannot drift apart.

  (p) perf: `workers` spawned processes with CPUs / workers torch threads each (what `bench run --workers`
      gives its workers), each training one cell's configuration with the trainer once all hold their data;
  (r) real: the same cells through `bench run`'s own path into a temporary store (its executor, the
      worker's data loading, the per-epoch validation pass and learning curve, evaluation, the store).

Both rates come from the epoch log (images/s of the training loop) averaged over epochs 2 and later, the
first paying the warm-up; (r) also gives images/s over its whole epochs (validation and learning curve
included) and where its wall time went.
"""

from __future__ import annotations

import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmark.errors import BenchError
from benchmark.grid import Cell, Grid
from benchmark.perf.train_speed import train_side_by_side
from benchmark.runner.grid_run import RunOptions, run_grid
from benchmark.runner.process_pool import threads_per_worker
from benchmark.runner.reference import label
from benchmark.store import CellStore

# The evaluation is not training: a cheap protocol keeps the command short (the breakdown says so).
QUICK_EVAL = (
    "eval.n_samples=1000",
    "eval.nll_size=100",
    "eval.nll_k=10",
    "eval.recon_size=500",
    "eval.inception=false",
)


@dataclass
class CellSpeed:
    cell: Cell
    perf_log: list[dict]  # (p)
    real_log: list[dict]  # (r)
    real_provenance: dict
    real_eval_seconds: float

    @property
    def perf_ips(self) -> float:
        return loop_rate(self.perf_log)

    @property
    def real_ips(self) -> float:
        return loop_rate(self.real_log)

    @property
    def real_epoch_ips(self) -> float:
        """Training images per second of whole epochs: the loop, validation and learning curve."""
        later = self.real_log[1:] or self.real_log
        return sum(epoch_images(e) for e in later) / sum(e["epoch_seconds"] for e in later)

    @property
    def same_training(self) -> bool:
        """Both paths trained the same cell: equal losses epoch for epoch (deterministic kernels)."""
        return [e["loss"] for e in self.perf_log] == [e["loss"] for e in self.real_log]

    def breakdown(self) -> dict[str, float]:
        """Where the real cell's wall time went, in seconds."""
        loop = sum(e["seconds"] for e in self.real_log)
        per_epoch = sum(e["epoch_seconds"] for e in self.real_log) - loop
        wall = self.real_provenance["wall_seconds"]
        rest = wall - loop - per_epoch - self.real_eval_seconds
        return {
            "training loop": loop,
            "validation and learning curve": per_epoch,
            "evaluation (reduced protocol)": self.real_eval_seconds,
            "data, model, checkpoint": rest,
            "wall": wall,
        }


def epoch_images(record: dict) -> int:
    return round(record["images_per_second"] * record["seconds"])


def loop_rate(log: list[dict]) -> float:
    """Mean images/s of the training loop over epochs 2 and later (epoch 1 alone when there is one)."""
    return statistics.fmean(e["images_per_second"] for e in (log[1:] or log))


def measure_cells(grid: Grid, cells: list[Cell], workers: int, data_dir=None) -> list[CellSpeed]:
    """(p) then (r) on the same cells, `workers` at a time, with the threads `bench run` would give each."""
    perf_logs = train_side_by_side([c.config for c in cells], worker_threads(workers), data_dir)
    with tempfile.TemporaryDirectory(prefix="bench-perf-cell-") as folder:
        store = CellStore(Path(folder))
        summary = run_grid(grid, cells, store, RunOptions(device="cpu", workers=workers, data_dir=data_dir))
        if summary.failed:
            raise BenchError(f"bench perf cell: the real run failed: {next(iter(summary.failed.values()))}")
        return [
            CellSpeed(
                cell,
                perf_log,
                store.read(cell.id, "log.json"),
                store.read(cell.id, "config.json")["provenance"],
                sum(store.read(cell.id, "metrics.json")["eval_seconds"].values()),
            )
            for cell, perf_log in zip(cells, perf_logs)
        ]


def worker_threads(workers: int) -> int | None:
    """What the executors give a cell: torch's default alone, CPUs / workers in a process pool."""
    return None if workers == 1 else threads_per_worker(workers)


def render_markdown(grid: Grid, speeds: list[CellSpeed], workers: int) -> str:
    threads = worker_threads(workers) or torch.get_num_threads()
    first = speeds[0]
    lines = [
        f"# A real cell against `bench perf` (`bench perf cell`, grid {grid.name})\n",
        f"Device of the real cells: {speeds[0].real_provenance['device']}; {workers} cell(s) at a time, "
        f"{threads} torch thread(s) each; "
        f"{len(first.real_log)} epochs of {epoch_images(first.real_log[0]):,} training images. "
        "(p) the trainer as `bench perf` runs it, in spawned processes; (r) the same cells through "
        "`bench run`'s path. Images/s of the training loop averaged over epochs 2 and later.\n",
        "| cell | (p) perf, images/s | (r) real loop, images/s | (r) / (p) | (r) whole epochs | same losses |",
        "|---|---|---|---|---|---|",
    ]
    for s in speeds:
        lines.append(
            f"| {label(s.cell)} | {s.perf_ips:,.0f} | {s.real_ips:,.0f} | {100 * s.real_ips / s.perf_ips:.0f}% | "
            f"{s.real_epoch_ips:,.0f} | {'yes' if s.same_training else 'no'} |"
        )
    lines += ["", "Where the real cells' wall time went (seconds):", ""]
    parts = list(first.breakdown())
    lines += ["| cell | " + " | ".join(parts) + " |", "|---" * (len(parts) + 1) + "|"]
    for s in speeds:
        lines.append(f"| {label(s.cell)} | " + " | ".join(f"{v:.1f}" for v in s.breakdown().values()) + " |")
    lines.append("")
    return "\n".join(lines)

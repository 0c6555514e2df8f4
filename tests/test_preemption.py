"""Cells that survive preemption: a cell stopped at any batch (SIGTERM) or killed (SIGKILL) resumes from its
saved training state and ends with the weights, log and metrics of an uninterrupted run."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from benchmark.config import CellConfig
from benchmark.errors import Preempted
from benchmark.grid.spec import load_grid
from benchmark.runner.grid_run import RunOptions, run_grid
from benchmark.store import CellStatus, CellStore
from benchmark.training import train_cell, trainer
from benchmark.training.resume import Checkpointing
from tests.test_runner import TINY, metrics_without_timing, write_grid

# 600 images in batches of 64: 10 batches an epoch; validation, a step schedule, early stopping, best epoch
PROTOCOL_CELL = CellConfig(
    dataset="synthetic",
    backbone="mlp",
    hidden=[32],
    latent_dim=4,
    epochs=5,
    train_size=600,
    batch_size=64,
    val_size=300,
    schedule="multistep",
    milestones=[2, 4],
    gamma=0.5,
    patience=3,
    select="best_val",
)


class StopAfter:
    """Stands in for the SIGTERM flag: reads True from the (n+1)-th read on. The trainer reads it after
    every batch, and once when training ends."""

    def __init__(self, n: int):
        self.reads, self.n, self.training = 0, n, False

    @property
    def requested(self) -> bool:
        self.reads += 1
        return self.reads > self.n


TIMING = ("seconds", "epoch_seconds", "images_per_second")


def untimed(log: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in TIMING} for e in log]


def same_training(a, b) -> bool:
    weights = all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))
    return weights and untimed(a.log) == untimed(b.log)


@pytest.mark.parametrize(
    "config",
    [
        PROTOCOL_CELL,
        PROTOCOL_CELL.model_copy(update={"binarize": "dynamic", "dataset": "synthetic", "kl_warmup_epochs": 2}),
        PROTOCOL_CELL.model_copy(update={"model": "ae"}),  # and its code density, fitted after training
        PROTOCOL_CELL.model_copy(  # and its code prior, trained after training
            update={
                "model": "vqvae",
                "backbone": "conv",
                "base_channels": 8,
                "conditioning": "none",
                "codebook_size": 16,
            }
        ),
    ],
    ids=["protocol", "dynamic-binarisation", "autoencoder", "vqvae"],
)
def test_a_cell_stopped_at_any_batch_resumes_to_an_uninterrupted_run(tmp_path, monkeypatch, config):
    uninterrupted = train_cell(config, device="cpu")
    path = tmp_path / "resume.pt"
    checkpointing = Checkpointing(path, "cell", every=2)
    for stops in ([0], [9], [10, 3], [17, 0, 25]):  # batches done before each stop: epoch ends, mid-epoch, repeated
        path.unlink(missing_ok=True)
        for n in stops:
            monkeypatch.setattr(trainer, "STOP", StopAfter(n))
            with pytest.raises(Preempted):
                train_cell(config, device="cpu", checkpointing=checkpointing)
        monkeypatch.setattr(trainer, "STOP", StopAfter(10**9))
        resumed = train_cell(config, device="cpu", checkpointing=checkpointing)
        assert same_training(resumed, uninterrupted), stops
        assert len(resumed.summary.pop("resumed_from")) == len(stops)
        assert resumed.summary == uninterrupted.summary


def test_a_state_saved_for_another_cell_is_not_resumed_from(tmp_path, monkeypatch):
    path = tmp_path / "resume.pt"
    monkeypatch.setattr(trainer, "STOP", StopAfter(12))
    with pytest.raises(Preempted):
        train_cell(PROTOCOL_CELL, device="cpu", checkpointing=Checkpointing(path, "other-cell"))
    monkeypatch.setattr(trainer, "STOP", StopAfter(10**9))
    fresh = train_cell(PROTOCOL_CELL, device="cpu", checkpointing=Checkpointing(path, "this-cell"))
    assert "resumed_from" not in fresh.summary


LONG = {**TINY, "epochs": 30}  # about 3 s of training a cell: long enough to stop inside


@pytest.fixture(scope="module")
def preempt_grid(tmp_path_factory) -> tuple[Path, CellStore]:
    """The grid the signals interrupt, and its cells trained without interruption (in this process)."""
    folder = tmp_path_factory.mktemp("preempt")
    grid_file = write_grid(folder / "preempt.yaml", "preempt", {"latent_dim": [2, 3]}, LONG)
    grid = load_grid(grid_file)
    clean = CellStore(folder / "clean")
    assert not run_grid(grid, list(grid.cells), clean, RunOptions(device="cpu")).failed
    return grid_file, clean


def _run(grid_file: Path, results: Path, *extra: str) -> subprocess.Popen:
    command = ["run", "--grid", str(grid_file), "--results", str(results), "--device", "cpu", *extra]
    return subprocess.Popen(
        [sys.executable, "-c", "from benchmark.commands import main; main()", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_a_new_saved_state(results: Path, process: subprocess.Popen, since_ns: int) -> None:
    """Until a cell of this run has saved its training state (so the run is training, its handler in place)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        for state in results.glob("*/resume.pt"):
            try:
                if state.stat().st_mtime_ns > since_ns:
                    return
            except FileNotFoundError:  # the cell finished and dropped it
                continue
        time.sleep(0.01)
    raise AssertionError("never saw a cell save its training state")


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_and_sigkill_at_random_moments_end_with_the_metrics_of_an_uninterrupted_run(
    tmp_path, preempt_grid, workers
):
    grid_file, clean = preempt_grid
    results, moments, mid_epoch_saves = tmp_path / "interrupted", random.Random(workers), 0
    extra = ("--workers", str(workers), "--checkpoint-every", "5")
    for kind in (signal.SIGTERM, signal.SIGKILL):
        started = time.time_ns()
        process = _run(grid_file, results, *extra)
        _wait_for_a_new_saved_state(results, process, started)
        time.sleep(moments.uniform(0, 0.5))
        os.kill(process.pid, kind)
        _, stderr = process.communicate(timeout=120)
        if process.returncode == 0:
            continue  # the grid ended before the signal
        if kind == signal.SIGTERM:
            assert process.returncode == 143, stderr
            assert stderr.strip().splitlines() == [
                "error: terminated (SIGTERM): cells in training saved their state; the next run resumes them"
            ]
            for state in results.glob("*/resume.pt"):  # a cell stopped in training saved where it stopped
                mid_epoch_saves += torch.load(state, weights_only=True)["position"] is not None
    finished = _run(grid_file, results, *extra)
    assert finished.wait(timeout=300) == 0, finished.stderr.read()
    store = CellStore(results)
    ids = [c["id"] for c in json.loads((results / "grids" / "preempt.json").read_text())["cells"]]
    resumed = 0
    for cell_id in ids:
        assert store.status(cell_id) == CellStatus.DONE
        assert metrics_without_timing(store, cell_id) == metrics_without_timing(clean, cell_id)
        assert not (results / cell_id / "resume.pt").exists()  # removed once the cell is done
        resumed += "resumed_from" in store.read(cell_id, "config.json")["training"]
    assert resumed >= 1
    assert mid_epoch_saves >= 1  # SIGTERM in training saves at the next batch, not at the last epoch's end


def test_a_state_from_other_code_or_device_kind_starts_over(tmp_path, monkeypatch):
    path = tmp_path / "resume.pt"
    monkeypatch.setattr(trainer, "STOP", StopAfter(12))
    with pytest.raises(Preempted):
        train_cell(
            PROTOCOL_CELL, device="cpu", checkpointing=Checkpointing(path, "c", origin={"code": "a", "device": "cpu"})
        )
    assert Checkpointing(path, "c", origin={"code": "a", "device": "cpu"}).load() is not None
    assert Checkpointing(path, "c", origin={"code": "b", "device": "cpu"}).load() is None
    assert Checkpointing(path, "c", origin={"code": "a", "device": "cuda"}).load() is None


def test_the_code_a_state_must_come_from_is_the_package_not_the_commit(tmp_path):
    """A saved state resumes under the same package files and library versions: a commit that publishes a
    report or edits a grid keeps it (the git commit did not), an edit of the package's code or data does not."""
    from benchmark.runner.provenance import package_fingerprint

    package = tmp_path / "benchmark"
    (package / "data").mkdir(parents=True)
    (package / "trainer.py").write_text("LR = 1e-3\n")
    (package / "data" / "keywords.yaml").write_text("Dress: [dress]\n")
    before = package_fingerprint(package)
    (tmp_path / "reports.md").write_text("a report published beside the package\n")
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "trainer.cpython-311.pyc").write_bytes(b"compiled")
    assert package_fingerprint(package) == before
    (package / "data" / "keywords.yaml").write_text("Dress: [dress, gown]\n")
    assert package_fingerprint(package) != before
    (package / "data" / "keywords.yaml").write_text("Dress: [dress]\n")
    assert package_fingerprint(package) == before
    (package / "trainer.py").write_text("LR = 2e-3\n")
    assert package_fingerprint(package) != before

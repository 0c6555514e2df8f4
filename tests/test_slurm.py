"""The slurm executor through submitit's local executor (real job processes, requeue included)."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from benchmark.grid.spec import load_grid
from benchmark.runner.grid_run import RunOptions, run_grid
from benchmark.store import CellStatus, CellStore
from tests.test_runner import TINY, metrics_without_timing, write_grid

pytest.importorskip("submitit")


def _bench(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", "from benchmark.commands import main; main()", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def _clean_store(grid_file: Path, folder: Path) -> CellStore:
    """The grid trained here as the jobs train it: one torch thread (CPU results depend on the count)."""
    grid, store, threads = load_grid(grid_file), CellStore(folder), torch.get_num_threads()
    try:
        assert not run_grid(grid, list(grid.cells), store, RunOptions(device="cpu", threads=1)).failed
    finally:
        torch.set_num_threads(threads)
    return store


def test_two_arrays_on_one_store_train_each_cell_once_with_the_metrics_of_a_local_run(tmp_path):
    grid_file = write_grid(tmp_path / "arrays.yaml", "arrays", {"latent_dim": [2, 3, 4, 5]})
    results = tmp_path / "shared-store"
    runs = [
        _bench("run", "--grid", grid_file, "--results", results, "--device", "cpu", "--executor", "slurm",
               "--slurm-local", "--slurm-cells-per-job", "2", "--slurm-folder", tmp_path / f"jobs-{k}")
        for k in range(2)
    ]  # fmt: skip
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in outputs]
    trained = [int(re.search(r"arrays: (\d+) trained", out).group(1)) for out, _ in outputs]
    assert sum(trained) == 4, outputs  # every cell once: the other array found it busy or done
    store, clean = CellStore(results), _clean_store(grid_file, tmp_path / "clean")
    ids = [c["id"] for c in json.loads((results / "grids" / "arrays.json").read_text())["cells"]]
    jobs = set()
    for cell_id in ids:
        assert store.status(cell_id) == CellStatus.DONE
        assert metrics_without_timing(store, cell_id) == metrics_without_timing(clean, cell_id)
        jobs.add(store.read(cell_id, "config.json")["provenance"]["job"])
    assert len(jobs) >= 2  # the cells were trained by several jobs


def _job_processes(folder: Path) -> list[int]:
    """The job processes submitit started with job files in `folder` (not another test's)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes() if proc.name.isdigit() else b""
            if b"submitit.core._submit" in command and str(folder).encode() in command:
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_a_preempted_job_saves_its_cell_is_requeued_and_resumes_it_to_an_uninterrupted_run(tmp_path):
    grid_file = write_grid(tmp_path / "preempt.yaml", "preempt", {"latent_dim": [3]}, {**TINY, "epochs": 40})
    results = tmp_path / "results"
    run = _bench("run", "--grid", grid_file, "--results", results, "--device", "cpu", "--executor", "slurm",
                 "--slurm-local", "--slurm-folder", tmp_path / "jobs", "--checkpoint-every", "5")  # fmt: skip
    deadline, signalled = time.monotonic() + 300, False
    while not signalled and time.monotonic() < deadline and run.poll() is None:
        if list(results.glob("*/resume.pt")) and (jobs := _job_processes(tmp_path / "jobs")):
            time.sleep(0.2)
            os.kill(jobs[0], signal.SIGUSR2)  # what submitit asks Slurm to send before preemption
            signalled = True
        time.sleep(0.01)
    assert signalled, "never saw the job train"
    out, err = run.communicate(timeout=600)
    assert run.returncode == 0, err[-2000:]
    (cell_id,) = [c["id"] for c in json.loads((results / "grids" / "preempt.json").read_text())["cells"]]
    store = CellStore(results)
    assert store.status(cell_id) == CellStatus.DONE
    assert "resumed_from" in store.read(cell_id, "config.json")["training"]  # the requeued job resumed it
    clean = _clean_store(grid_file, tmp_path / "clean")
    assert metrics_without_timing(store, cell_id) == metrics_without_timing(clean, cell_id)

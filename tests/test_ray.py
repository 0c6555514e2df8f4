import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from benchmark.store import CellStatus, CellStore

pytest.importorskip("ray")

TINY = {"dataset": "synthetic", "backbone": "mlp", "hidden": [64], "train_size": 1000, "epochs": 2}
TINY_EVAL = {"recon_size": 200, "n_samples": 300, "nll_size": 50, "nll_k": 5}


def grid_file(tmp_path: Path, latents: list[int]) -> Path:
    path = tmp_path / "ray.yaml"
    spec = {"name": "ray", "base": TINY, "axes": {"latent_dim": latents}, "seeds": [0], "eval": TINY_EVAL}
    path.write_text(yaml.safe_dump(spec))
    return path


def bench_command(*args) -> list[str]:
    return [sys.executable, "-c", "from benchmark.commands import main; main()", *map(str, args)]


def metrics(results: Path) -> dict:
    """Every done cell's metrics as the store reads them (its checksums, which cover provenance, aside)."""
    found = {}
    for path in results.glob("*/metrics.json"):
        data = CellStore(results).read(path.parent.name, "metrics.json")
        data.pop("eval_seconds")
        found[path.parent.name] = data
    return found


def _worker_pids() -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"ray::_remote_unit" in (entry / "cmdline").read_bytes():
                    pids.add(int(entry.name))
            except OSError:
                continue
    return pids


def _kill_next_worker(seen: set[int], process: subprocess.Popen, timeout: float = 240) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        fresh = _worker_pids() - seen
        if fresh:
            pid = min(fresh)
            os.kill(pid, signal.SIGKILL)
            seen.add(pid)
            return pid
        time.sleep(0.05)
    raise AssertionError("no Ray worker ran a cell")


def test_ray_executor_retries_a_killed_worker_and_gives_exactly_the_local_metrics(tmp_path):
    grid = grid_file(tmp_path, [2, 3, 4])
    common = ["--grid", grid, "--device", "cpu"]
    process = subprocess.Popen(
        bench_command(
            "run", *common, "--results", tmp_path / "ray", "--executor", "ray", "--ray-cpus", 2, "--cpus-per-cell", 1
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _kill_next_worker(set(), process)  # one loss: Ray runs the task again
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-2000:]
    local = subprocess.run(
        bench_command("run", *common, "--results", tmp_path / "local", "--threads", 1), capture_output=True, text=True
    )
    assert local.returncode == 0, local.stderr
    ray_metrics, local_metrics = metrics(tmp_path / "ray"), metrics(tmp_path / "local")
    assert len(ray_metrics) == 3 and ray_metrics == local_metrics


def test_a_worker_lost_twice_fails_its_cell(tmp_path):
    grid = grid_file(tmp_path, [2])
    results = tmp_path / "results"
    process = subprocess.Popen(
        bench_command(
            "run", "--grid", grid, "--results", results, "--executor", "ray", "--ray-cpus", 2, "--cpus-per-cell", 2
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: set[int] = set()
    for _ in range(2):  # the first try and its one retry
        _kill_next_worker(seen, process)
    process.communicate(timeout=300)
    (cell_id,) = [e["id"] for e in json.loads((results / "grids" / "ray.json").read_text())["cells"]]
    store = CellStore(results)
    assert process.returncode == 1
    assert store.status(cell_id) == CellStatus.FAILED
    assert store.read(cell_id, "failed.json")["reason"].startswith("Ray worker lost twice")


def test_ray_missing_gives_an_install_hint(tmp_path, monkeypatch):
    import builtins

    from benchmark.errors import BenchError
    from benchmark.runner import ray_executor

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("no ray")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(BenchError, match=r"pip install 'cvae-bench\[ray\]'"):
        ray_executor._ray()

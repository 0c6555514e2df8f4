import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from benchmark.fileio import write_json
from benchmark.grid.spec import build_grid, load_grid
from benchmark.runner.grid_run import RunOptions, run_grid
from benchmark.runner.process_pool import usable_cpus
from benchmark.store import CellStatus, CellStore

TINY = {
    "dataset": "synthetic",
    "backbone": "mlp",
    "hidden": [64],
    "latent_dim": 4,
    "train_size": 1000,
    "epochs": 2,
}
TINY_EVAL = {"recon_size": 200, "n_samples": 300, "nll_size": 50, "nll_k": 5}


def write_grid(path: Path, name: str, axes: dict, base=None) -> Path:
    base = {k: v for k, v in (base or TINY).items() if k not in axes}
    spec = {"name": name, "base": base, "axes": axes, "seeds": [0], "eval": TINY_EVAL}
    path.write_text(yaml.safe_dump(spec))
    return path


def bench(*args, **kwargs):
    cmd = [sys.executable, "-c", "from benchmark.commands import main; main()", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, **kwargs)


def metrics_without_timing(store: CellStore, cell_id: str) -> dict:
    metrics = store.read(cell_id, "metrics.json")
    metrics.pop("eval_seconds")
    return metrics


def test_run_stores_every_artifact_and_resume_skips_done_cells(tmp_path):
    grid = build_grid(
        {"name": "tiny", "base": TINY, "axes": {"conditioning": ["none", "concat"]}, "eval": TINY_EVAL},
        "tiny.yaml",
    )
    store = CellStore(tmp_path)
    summary = run_grid(grid, list(grid.cells), store, RunOptions(device="cpu"))
    assert len(summary.done) == 2 and not summary.failed
    for cell in grid.cells:
        folder = store.cell_dir(cell.id)
        for name in (
            "config.json",
            "log.json",
            "metrics.json",
            "model.pt",
            "reconstructions.png",
            "samples.png",
        ):
            assert (folder / name).exists(), name
        config = store.read(cell.id, "config.json")
        assert config["cell"]["conditioning"] == cell.config.conditioning
        for key in ("packages", "git_commit", "device", "host", "start", "end", "wall_seconds"):
            assert key in config["provenance"]
        assert (folder / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert not list(folder.glob("*.tmp"))
    assert json.loads((tmp_path / "grids" / "tiny.json").read_text())["cells"][0]["id"] == grid.cells[0].id
    again = run_grid(grid, list(grid.cells), store, RunOptions(device="cpu"))
    assert again.done == [] and len(again.skipped) == 2
    before = metrics_without_timing(store, grid.cells[0].id)
    forced = run_grid(grid, list(grid.cells[:1]), store, RunOptions(device="cpu", force=True))
    assert forced.done == [grid.cells[0].id]
    assert metrics_without_timing(store, grid.cells[0].id) == before  # bit-identical on CPU


def test_every_cell_records_the_commit_its_run_started_with(tmp_path, monkeypatch):
    """Commits made while a long run goes on do not relabel its later cells."""
    from benchmark.runner import provenance

    monkeypatch.setenv(provenance.COMMIT_VARIABLE, "")
    monkeypatch.delenv(provenance.COMMIT_VARIABLE)  # restored (unset or as it was) after the test
    commits = iter(["at-start", "moved-on", "moved-on", "moved-on"])
    monkeypatch.setattr(provenance, "_read_git_commit", lambda: next(commits))
    grid = build_grid(
        {
            "name": "tiny",
            "base": {**TINY, "epochs": 1},
            "axes": {"conditioning": ["none", "concat"]},
            "eval": TINY_EVAL,
        },
        "t.yaml",
    )
    store = CellStore(tmp_path)
    run_grid(grid, list(grid.cells), store, RunOptions(device="cpu"))
    assert [store.read(c.id, "config.json")["provenance"]["git_commit"] for c in grid.cells] == ["at-start"] * 2


def test_lock_keeps_two_runs_off_one_cell(tmp_path):
    grid = build_grid({"name": "tiny", "base": TINY, "eval": TINY_EVAL}, "tiny.yaml")
    store = CellStore(tmp_path)
    with store.claim(grid.cells[0].id) as mine:
        assert mine
        summary = run_grid(grid, list(grid.cells), store, RunOptions(device="cpu"))
    assert summary.busy == [grid.cells[0].id]
    assert store.status(grid.cells[0].id) == CellStatus.PENDING


def test_nan_cell_is_recorded_failed_and_the_grid_goes_on(tmp_path, cli):
    grid_file = write_grid(tmp_path / "nan.yaml", "nan", {"lr": [0.001, 1.0e20]})
    result = cli(
        "run",
        "--grid",
        grid_file,
        "--results",
        tmp_path / "results",
        "--device",
        "cpu",
    )
    assert result.returncode == 1, result.stderr
    store = CellStore(tmp_path / "results")
    states = {}
    for entry in json.loads((tmp_path / "results" / "grids" / "nan.json").read_text())["cells"]:
        states[entry["axes"]["lr"]] = store.status(entry["id"])
        if entry["axes"]["lr"] > 1:
            reason = store.read(entry["id"], "failed.json")["reason"]
            assert reason.startswith("non-finite loss at epoch 1")
    assert states == {0.001: CellStatus.DONE, 1.0e20: CellStatus.FAILED}
    assert "failed" in result.stdout and "Traceback" not in result.stderr


# a cell trained the way the literature trains: validation split, step schedule, early stopping, best epoch
PROTOCOL = {"val_size": 300, "schedule": "multistep", "milestones": [2], "patience": 2, "select": "best_val"}


@pytest.mark.parametrize("base", [{**TINY, "epochs": 4}, {**TINY, **PROTOCOL, "epochs": 6}], ids=["plain", "protocol"])
def test_sigkill_mid_cell_then_resume_matches_an_uninterrupted_run(tmp_path, cli, base):
    grid_file = write_grid(tmp_path / "kill.yaml", "kill", {"latent_dim": [2, 3, 4]}, base)
    results = tmp_path / "interrupted"
    cmd = [
        sys.executable,
        "-c",
        "from benchmark.commands import main; main()",
        "run",
        "--grid",
        str(grid_file),
        "--results",
        str(results),
        "--device",
        "cpu",
    ]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = CellStore(results)
    victim = None
    deadline = time.monotonic() + 300
    while victim is None and time.monotonic() < deadline and process.poll() is None:
        done = list(results.glob("*/metrics.json"))
        started = [p.parent for p in results.glob("*/config.json") if not (p.parent / "metrics.json").exists()]
        if done and started:
            victim = started[0].name
        time.sleep(0.01)
    assert victim is not None, "never saw a cell in flight"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert store.status(victim) == CellStatus.PENDING  # partial folder, not done
    finished_before = {p.parent.name: p.stat().st_mtime_ns for p in results.glob("*/metrics.json")}

    resumed = cli("run", "--grid", grid_file, "--results", results, "--device", "cpu")
    assert resumed.returncode == 0, resumed.stderr
    clean = cli(
        "run",
        "--grid",
        grid_file,
        "--results",
        tmp_path / "clean",
        "--device",
        "cpu",
    )
    assert clean.returncode == 0, clean.stderr

    ids = [c["id"] for c in json.loads((results / "grids" / "kill.json").read_text())["cells"]]
    for cell_id, mtime in finished_before.items():  # done before the kill: not trained again
        assert (results / cell_id / "metrics.json").stat().st_mtime_ns == mtime
    for cell_id in ids:
        assert store.status(cell_id) == CellStatus.DONE
        assert metrics_without_timing(store, cell_id) == metrics_without_timing(CellStore(tmp_path / "clean"), cell_id)
        assert not list((results / cell_id).glob("*.tmp"))


def test_dry_run_lists_cells_without_training(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(Path(__file__).parents[1])
    result = cli(
        "run",
        "--grid",
        "ablations/smoke.yaml",
        "--dry-run",
        "--results",
        tmp_path / "r",
    )
    assert result.returncode == 0, result.stderr
    assert "smoke: 8 cells (dry run)" in result.stdout
    assert result.stdout.count("pending") == 8
    assert not list((tmp_path / "r").glob("*/config.json"))


def test_only_filter_and_status(tmp_path, cli):
    grid_file = write_grid(tmp_path / "f.yaml", "f", {"conditioning": ["none", "concat"]})
    run = cli(
        "run",
        "--grid",
        grid_file,
        "--results",
        tmp_path / "r",
        "--only",
        "conditioning=concat",
        "--device",
        "cpu",
    )
    assert run.returncode == 0, run.stderr
    assert "1 trained" in run.stdout
    status = cli("status", "--grid", grid_file, "--results", tmp_path / "r")
    assert "1 done, 0 failed, 1 pending" in status.stdout
    bad = cli("run", "--grid", grid_file, "--only", "colour=red", "--results", tmp_path / "r")
    assert bad.returncode == 2 and "unknown field 'colour'" in bad.stderr


def test_workers_train_cells_side_by_side_with_the_metrics_of_one_thread_runs(tmp_path):
    grid_file = write_grid(tmp_path / "w.yaml", "w", {"latent_dim": [2, 3, 4]})
    common = ["run", "--grid", grid_file, "--device", "cpu"]
    parallel = bench(*common, "--results", tmp_path / "parallel", "--workers", 2)
    assert parallel.returncode == 0, parallel.stderr[-2000:]
    alone = bench(*common, "--results", tmp_path / "alone", "--threads", 1)
    assert alone.returncode == 0, alone.stderr
    together, one_by_one = CellStore(tmp_path / "parallel"), CellStore(tmp_path / "alone")
    ids = [c["id"] for c in json.loads((tmp_path / "parallel" / "grids" / "w.json").read_text())["cells"]]
    spans = []
    for cell_id in ids:
        assert metrics_without_timing(together, cell_id) == metrics_without_timing(one_by_one, cell_id)
        provenance = together.read(cell_id, "config.json")["provenance"]
        if usable_cpus() == 2:
            assert provenance["device"].endswith("1 thread)")  # CPUs / workers
        spans.append((provenance["start"], provenance["end"]))
    spans.sort()
    assert any(later[0] <= earlier[1] for earlier, later in zip(spans, spans[1:]))  # two cells ran at once


def test_compile_option_reaches_the_cell_and_its_provenance(tmp_path, cli, monkeypatch):
    import torch

    compiled = []
    monkeypatch.setattr(torch, "compile", lambda fn: compiled.append(fn) or fn)  # compiling itself: bench perf
    grid_file = write_grid(tmp_path / "c.yaml", "c", {"latent_dim": [2]})
    run = cli(
        "run",
        "--grid",
        grid_file,
        "--results",
        tmp_path / "r",
        "--device",
        "cpu",
        "--compile",
    )
    assert run.returncode == 0, run.stderr[-2000:]
    (cell_dir,) = [p.parent for p in (tmp_path / "r").glob("*/metrics.json")]
    assert json.loads((cell_dir / "config.json").read_text())["provenance"]["compile"] is True
    assert len(compiled) == 1


def _spawned_workers(parent: int) -> list[int]:
    workers = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and f"PPid:\t{parent}\n" in (entry / "status").read_text():
                if b"spawn_main" in (entry / "cmdline").read_bytes():
                    workers.append(int(entry.name))
        except OSError:
            continue
    return workers


def test_lost_worker_fails_its_cells_and_the_next_run_redoes_only_them(tmp_path):
    grid_file = write_grid(tmp_path / "lost.yaml", "lost", {"latent_dim": [2, 3, 4]}, {**TINY, "epochs": 6})
    results = tmp_path / "r"
    command = ["run", "--grid", grid_file, "--results", results, "--device", "cpu"]
    process = subprocess.Popen(
        [sys.executable, "-c", "from benchmark.commands import main; main()", *map(str, command), "--workers", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline, killed = time.monotonic() + 300, None
    while killed is None and time.monotonic() < deadline and process.poll() is None:
        done = list(results.glob("*/metrics.json"))
        workers = _spawned_workers(process.pid)
        if 0 < len(done) < 3 and workers:
            os.kill(workers[0], signal.SIGKILL)
            killed = workers[0]
        time.sleep(0.01)
    assert killed is not None, "never saw a worker while cells were left"
    assert process.wait(timeout=120) == 1  # some cells failed
    store = CellStore(results)
    ids = [c["id"] for c in json.loads((results / "grids" / "lost.json").read_text())["cells"]]
    lost = [i for i in ids if store.status(i) == CellStatus.FAILED]
    assert lost and all("worker process lost" in store.read(i, "failed.json")["reason"] for i in lost)
    kept = {i: (results / i / "metrics.json").stat().st_mtime_ns for i in ids if i not in lost}
    assert kept
    rerun = bench(*command, "--workers", "2")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert all(store.status(i) == CellStatus.DONE for i in ids)
    assert all((results / i / "metrics.json").stat().st_mtime_ns == t for i, t in kept.items())


def test_workers_end_when_their_run_is_killed(tmp_path):
    grid_file = write_grid(tmp_path / "long.yaml", "long", {"latent_dim": [2, 3]}, {**TINY, "epochs": 1000})
    command = ["run", "--grid", grid_file, "--results", tmp_path / "r", "--device", "cpu", "--workers", "2"]
    process = subprocess.Popen(
        [sys.executable, "-c", "from benchmark.commands import main; main()", *map(str, command)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while len(workers := _spawned_workers(process.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(workers) == 2, "the run never started its workers"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 60
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    alive = [pid for pid in workers if Path(f"/proc/{pid}/status").exists() and "Z" not in _state(pid)]
    assert not alive, f"workers {alive} outlived their run"


def _state(pid: int) -> str:
    try:
        return next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State"))
    except OSError:
        return "Z"


def test_workers_with_ray_is_a_one_line_user_error(tmp_path, cli):
    result = cli("run", "--workers", 2, "--executor", "ray", "--dry-run", "--results", tmp_path / "r")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --workers 2 is for the local executor; with ray, set --cpus-per-cell"
    ]


def test_evaluate_remeasures_from_checkpoints_without_training(tmp_path, cli):
    from benchmark.runner.evaluate_stage import current_version, is_stale

    grid_file = write_grid(tmp_path / "e.yaml", "e", {"conditioning": ["none", "concat"]})
    results = tmp_path / "r"
    assert cli("run", "--grid", grid_file, "--results", results, "--device", "cpu").returncode == 0
    grid = load_grid(grid_file)
    store = CellStore(results)
    trained = {c.id: metrics_without_timing(store, c.id) for c in grid.cells}
    checkpoints = {c.id: (results / c.id / "model.pt").stat().st_mtime_ns for c in grid.cells}
    assert not any(is_stale(store, c) for c in grid.cells)

    # as if measured before ssim_gaussian existed: an older reconstruction group, without the metric
    old = grid.cells[0]
    metrics = store.read(old.id, "metrics.json")
    del metrics["ssim_gaussian"]
    metrics["protocol"]["groups"]["reconstruction"] = 1
    metrics["protocol"]["version"] = "older"
    write_json(results / old.id / "metrics.json", metrics)
    assert is_stale(store, old)
    assert "1 done under an older protocol" in cli("status", "--grid", grid_file, "--results", results).stdout

    run = cli(
        "evaluate",
        "--grid",
        grid_file,
        "--results",
        results,
        "--device",
        "cpu",
        "--metrics",
        "ssim_gaussian",
        "--stale",
    )
    assert run.returncode == 0, run.stderr
    assert "1 measured" in run.stdout
    again = metrics_without_timing(store, old.id)
    assert again["ssim_gaussian"] == trained[old.id]["ssim_gaussian"]  # the same number a full run gives
    assert again["protocol"]["version"] == current_version(old) and not is_stale(store, old)
    assert again == trained[old.id]
    assert all((results / i / "model.pt").stat().st_mtime_ns == t for i, t in checkpoints.items())  # no training

    full = cli("evaluate", "--grid", grid_file, "--results", results, "--device", "cpu")
    assert full.returncode == 0 and "2 measured" in full.stdout
    assert all(metrics_without_timing(store, c.id) == trained[c.id] for c in grid.cells)  # bit-identical on CPU
    bad = cli("evaluate", "--grid", grid_file, "--results", results, "--metrics", "ssim_gausian")
    assert bad.returncode == 2 and "unknown metric" in bad.stderr


VQ_TINY = {**TINY, "backbone": "conv", "base_channels": 8, "conditioning": "none", "codebook_size": 16, "val_size": 200}


@pytest.mark.parametrize(
    ("model", "base", "sampler"), [("ae", TINY, "codes from a Gaussian"), ("vqvae", VQ_TINY, "code grids drawn")]
)
def test_a_new_model_s_cell_runs_evaluates_again_bit_for_bit_and_samples(tmp_path, cli, model, base, sampler):
    grid_file = write_grid(tmp_path / f"{model}.yaml", model, {"model": [model]}, base)
    results = tmp_path / "r"
    run = cli("run", "--grid", grid_file, "--results", results, "--device", "cpu")
    assert run.returncode == 0, run.stderr
    (cell,) = load_grid(grid_file).cells
    store = CellStore(results)
    trained = metrics_without_timing(store, cell.id)
    assert trained["protocol"]["sampler"].startswith(sampler)
    run = cli("evaluate", "--grid", grid_file, "--results", results, "--device", "cpu")
    assert run.returncode == 0 and "1 measured" in run.stdout
    assert metrics_without_timing(store, cell.id) == trained  # the fitted density or prior travels in model.pt
    out = tmp_path / f"{model}.png"
    sampled = cli("sample", "--cell", cell.id, "--results", results, "--label", "3", "--out", out)
    assert sampled.returncode == 0, sampled.stderr
    assert out.read_bytes().startswith(b"\x89PNG")

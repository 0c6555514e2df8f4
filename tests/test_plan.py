"""`bench plan`: the training-time estimate is its stated arithmetic on the cell's FLOPs and the measured
rate, only pending cells are planned, and the seeds it asks for are what a paired test at Holm's first
step needs at the pilot's spread (recomputed here with scipy, independently of report/stats.py)."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from benchmark.grid.spec import build_grid
from benchmark.perf import plan
from benchmark.perf.train_speed import flops_per_image
from benchmark.runner.grid_run import RunOptions, run_grid
from benchmark.store import CellStore

RAW = {
    "name": "planned",
    "base": {"dataset": "synthetic", "backbone": "mlp", "hidden": [32], "train_size": 300, "val_size": 50},
    "axes": {"conditioning": ["none", "concat"]},
    "seeds": [0, 1, 2],
    "eval": {"recon_size": 50, "n_samples": 50, "nll_size": 10, "nll_k": 2},
}


def _grid(epochs: int):
    return build_grid({**RAW, "base": {**RAW["base"], "epochs": epochs}}, "planned.yaml")


def test_the_estimate_is_flops_times_images_over_the_measured_rate(monkeypatch, tmp_path):
    monkeypatch.setattr(plan, "_trainer_timing", lambda cell, data_dir: (1e-3, 0.25))  # 1,000 images/s, 0.25 s
    grid = _grid(epochs=4)
    store = CellStore(tmp_path / "results")
    run_grid(grid, list(grid.cells[:1]), store, RunOptions(device="cpu", max_cells=1))
    cells = plan.pending(list(grid.cells), store)
    assert len(cells) == len(grid.cells) - 1 and grid.cells[0] not in cells  # a done cell is not planned
    estimates = plan.estimate_cells(cells, threads=1)
    rate = 1000.0 * estimates[0].flops_per_image  # one family: the FLOP rate of its first cell's timed run
    for e in estimates:
        assert e.flops_per_image == flops_per_image(e.cell.config, torch.device("cpu")) > 0
        assert (e.train_images, e.forward_images, e.epochs, e.flop_rate) == (300, 50, 4, rate)
        # every epoch 0.25 s, and 300 images trained and 50 validated (a third of a step each) at the FLOP rate
        epoch = 0.25 + (300 + 50 / 3) * e.flops_per_image / rate
        assert e.train_seconds() == pytest.approx(4 * epoch, rel=1e-12)
    concat = [e for e in estimates if e.cell.config.conditioning == "concat"]
    assert concat[0].flops_per_image > estimates[0].flops_per_image  # the label costs FLOPs: concat takes longer
    expected = sum(4 * (0.25 + (300 + 50 / 3) * e.flops_per_image / rate) for e in estimates)
    assert plan.total_seconds(estimates, use_pilot=False) == pytest.approx(expected, rel=1e-12)


def _power(difference: float, spread: float, n: int, alpha: float) -> float:
    df, shift = n - 1, difference * math.sqrt(n) / spread
    critical = stats.t.ppf(1 - alpha / 2, df)
    return stats.nct.sf(critical, df, shift) + stats.nct.cdf(-critical, df, shift)


def test_the_seeds_asked_for_are_what_the_paired_test_needs_at_the_pilots_spread(tmp_path):
    pilot_grid = build_grid(
        {
            **RAW,
            "base": {**RAW["base"], "epochs": 1},
            "question": {"text": "Q?", "axis": "conditioning", "metrics": ["sse_image"]},
        },
        "planned.yaml",
    )
    pilot = CellStore(tmp_path / "pilot")
    assert not run_grid(pilot_grid, list(pilot_grid.cells), pilot, RunOptions(device="cpu")).failed
    values = {
        (dict(c.axis_values)["conditioning"], c.config.seed): pilot.read(c.id, "metrics.json")["sse_image"]
        for c in pilot_grid.cells
    }
    differences = np.array([values["concat", s] - values["none", s] for s in (0, 1, 2)])
    spread, mean = differences.std(ddof=1), np.mean(list(values.values()))
    effect = spread / abs(mean)  # a difference of one spread: d = 1, about ten seeds
    (row,) = plan.seeds_needed(pilot, pilot_grid, effect=effect)
    assert row.mean == pytest.approx(mean) and row.worst_spread == pytest.approx(spread)
    needed = next(n for n in range(2, 100_000) if _power(spread, spread, n, 0.05) >= 0.8)  # one pair: family 1
    assert needed == 10 and row.seeds == needed and row.pilot_seeds == 3 and row.level_pairs == 1
    wider = plan.seeds_needed(pilot, pilot_grid, effect=2 * effect)[0]
    assert wider.seeds <= row.seeds  # a larger difference never needs more seeds


@pytest.mark.parametrize(
    "args, message",
    [
        (["--effect", "0"], "--effect 0.0: a share of the metric's mean, above 0 and at most 1"),
        (["--effect", "3"], "--effect 3.0: a share of the metric's mean"),
        (["--pilot", "nowhere"], "--pilot nowhere"),
    ],
)
def test_bad_plan_input_is_one_line(cli, tmp_path, args, message):
    grid = tmp_path / "g.yaml"
    grid.write_text("name: g\nbase:\n  dataset: synthetic\n  backbone: mlp\n  train_size: 100\n")
    result = cli("plan", "--grid", grid, "--results", tmp_path / "results", *args)
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_pilot_without_the_grid_is_refused(cli, tmp_path):
    grid = tmp_path / "g.yaml"
    grid.write_text("name: g\nbase:\n  dataset: synthetic\n  backbone: mlp\n  train_size: 100\n")
    (tmp_path / "other" / "grids").mkdir(parents=True)
    result = cli("plan", "--grid", grid, "--pilot", tmp_path / "other")
    assert result.returncode == 2 and "no run of grid 'g' there" in result.stderr


def test_a_two_seed_pilot_plans_seeds_without_a_test_of_its_own(tmp_path):
    """Below three seeds the report tests nothing, but the pairs still have a spread to plan from."""
    raw = {**RAW, "base": {**RAW["base"], "epochs": 1}, "seeds": [0, 1]}
    raw["question"] = {"text": "Q?", "axis": "conditioning", "metrics": ["sse_image", "ssim"]}
    pilot_grid = build_grid(raw, "planned.yaml")
    pilot = CellStore(tmp_path / "pilot")
    assert not run_grid(pilot_grid, list(pilot_grid.cells), pilot, RunOptions(device="cpu")).failed
    rows = {r.metric: r for r in plan.seeds_needed(pilot, pilot_grid, effect=0.05)}
    assert set(rows) == {"sse_image", "ssim"} and all(r.pilot_seeds == 2 for r in rows.values())
    assert all(r.seeds is None or r.seeds >= 3 for r in rows.values()) and all(not r.note for r in rows.values())

"""`bench reproduce` catches a real regression: a smoke cell trained with a planted bug drifts past the
committed tolerances (the passing case is the nox session `cells`, which reproduces every smoke cell)."""

from pathlib import Path

from benchmark.grid import load_grid
from benchmark.runner.grid_run import RunOptions, filter_cells, run_grid
from benchmark.runner.reference import compare_with_reference, label
from benchmark.store import CellStore
from benchmark.training import trainer

SMOKE = Path(__file__).parents[1] / "ablations" / "smoke.yaml"


def test_a_planted_beta_bug_drifts_past_the_reference(shared_data, tmp_path, monkeypatch):
    monkeypatch.setattr(trainer, "kl_weight", lambda beta, epoch, warmup: 0.8 * beta)  # beta off by 20%
    grid = load_grid(SMOKE)
    (cell,) = filter_cells(grid.cells, ["backbone=mlp", "conditioning=concat"])
    store = CellStore(tmp_path)
    run_grid(grid, [cell], store, RunOptions(device="cpu", data_dir=shared_data))
    problems = [
        p for p in compare_with_reference(grid, store, SMOKE.with_suffix(".reference.json")) if label(cell) in p
    ]
    print("\n".join(problems))
    drifted = {p.split(": ")[1].split(" = ")[0] for p in problems}
    assert {"sse_image", "mse_pixel", "fid_domain"} <= drifted

"""`bench compare`: the same cells in two stores, metric by metric, against the reproduction tolerances."""

import pytest
from test_runner import TINY, TINY_EVAL

from benchmark.grid.spec import build_grid
from benchmark.runner.grid_run import RunOptions, run_grid
from benchmark.runner.reference import compare_stores, tolerances
from benchmark.store import CellStore
from benchmark.training import trainer

SPEC = {"name": "tiny", "base": TINY, "axes": {"conditioning": ["none", "concat"]}, "eval": TINY_EVAL}


@pytest.fixture(scope="module")
def stores(tmp_path_factory, request):
    """A: both cells; B: the same cells trained again (bit-identical on CPU); C: the concat cell trained with
    a planted bug (beta off by 20%), the other cell left pending."""
    grid = build_grid(SPEC, "tiny.yaml")
    root = tmp_path_factory.mktemp("compare")
    a, b, c = (CellStore(root / name) for name in "abc")
    for store in (a, b):
        run_grid(grid, list(grid.cells), store, RunOptions(device="cpu"))
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(trainer, "kl_weight", lambda beta, epoch, warmup: 0.8 * beta)
    run_grid(grid, [grid.cells[1]], c, RunOptions(device="cpu"))
    monkeypatch.undo()
    (root / "tiny.yaml").write_text(__import__("yaml").safe_dump(SPEC))
    return grid, a, b, c, root


def test_a_rerun_matches_its_store_and_a_planted_bug_is_beyond_tolerance(stores):
    grid, a, b, c, _ = stores
    metrics = list(tolerances())
    same, notes = compare_stores(grid, a, b, metrics)
    assert not notes and len({r.cell for r in same}) == 2
    assert same and not any(r.beyond for r in same) and all(r.difference == 0 for r in same)
    drifted, notes = compare_stores(grid, a, c, metrics)
    assert notes == ["conditioning=none seed=0: done in A, pending in B; not compared"]
    assert {r.cell for r in drifted} == {"conditioning=concat seed=0"}
    assert {"sse_image", "mse_pixel"} <= {r.metric for r in drifted if r.beyond}
    row = next(r for r in drifted if r.metric == "sse_image")
    spec = tolerances()["sse_image"]
    assert row.allowed == pytest.approx(spec["abs"] + spec["rel"] * abs(row.a))


def test_the_command_exits_1_on_drift_and_writes_every_row_as_csv(stores, cli):
    import pandas as pd

    _, a, b, c, root = stores
    grid = root / "tiny.yaml"
    ok = cli("compare", a.root, b.root, "--grid", grid)
    assert ok.returncode == 0, ok.stderr
    assert "2 cells and" in ok.stdout and "0 beyond tolerance" in ok.stdout
    csv = root / "drift.csv"
    drift = cli("compare", a.root, c.root, "--grid", grid, "--metric", "sse_image", "--csv", csv)
    assert drift.returncode == 1 and "1 beyond tolerance" in drift.stdout
    table = pd.read_csv(csv)
    assert list(table["metric"]) == ["sse_image"] and bool(table["beyond"].iloc[0])


@pytest.mark.parametrize(
    "args, message",
    [
        (["{a}", "{root}", "--grid", "{grid}"], "STORE_B {root}: not a cell store"),
        (["{a}", "{root}/none", "--grid", "{grid}"], "STORE_B {root}/none: no such folder"),
        (["{a}", "{b}", "--grid", "{grid}", "--metric", "sse"], "--metric sse: unknown metric"),
        (["{a}", "{b}", "--grid", "{grid}", "--csv", "{root}/out.txt"], "--csv {root}/out.txt: writes a CSV file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(stores, cli, args, message):
    _, a, b, _, root = stores
    values = {"a": a.root, "b": b.root, "root": root / "empty", "grid": root / "tiny.yaml"}
    (root / "empty").mkdir(exist_ok=True)
    result = cli("compare", *(arg.format(**values) for arg in args))
    assert result.returncode == 2 and message.format(**values) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

"""`bench compare`: the same cells in two stores, metric by metric, against the reproduction tolerances."""

import pytest
from test_runner import TINY, TINY_EVAL

from benchmark.grid.spec import build_grid
from benchmark.runner.grid_run import RunOptions, run_grid
from benchmark.runner.reference import StoreDifference, compare_stores, label, tolerances
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


def cells_of(grid):
    return [(label(cell), cell.id) for cell in grid.cells]


def test_a_rerun_matches_its_store_and_a_planted_bug_is_beyond_tolerance(stores):
    grid, a, b, c, _ = stores
    metrics = list(tolerances())
    same = compare_stores(cells_of(grid), a, b, metrics)
    assert not same.notes and not same.missing and len({r.cell for r in same.rows}) == 2
    assert same.rows and not any(r.beyond for r in same.rows) and all(r.difference == 0 for r in same.rows)
    result = compare_stores(cells_of(grid), a, c, metrics)
    drifted = result.rows
    assert result.missing == ["conditioning=none seed=0: done in A, pending in B"]
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
    assert drift.returncode == 1 and "1 beyond tolerance, 1 done in A and missing in B" in drift.stdout
    table = pd.read_csv(csv)
    assert list(table["metric"]) == ["sse_image"] and bool(table["beyond"].iloc[0])
    nested = root / "new" / "folder" / "rows.csv"  # a folder that does not exist yet is made
    assert cli("compare", a.root, b.root, "--grid", grid, "--csv", nested).returncode == 0 and nested.is_file()


def test_a_value_that_is_not_a_number_in_one_store_is_beyond_tolerance():
    nan = float("nan")
    assert StoreDifference("c", "sse_image", 30.0, nan, 0.06).beyond
    assert StoreDifference("c", "sse_image", 30.0, None, None).beyond
    assert not StoreDifference("c", "sse_image", nan, nan, None).beyond
    assert not StoreDifference("c", "sse_image", 30.0, 30.05, 0.06).beyond


@pytest.mark.parametrize(
    "args, message",
    [
        (["{a}", "{root}", "--grid", "{grid}"], "STORE_B {root}: not a cell store"),
        (["{a}", "{root}/none", "--grid", "{grid}"], "STORE_B {root}/none: no such folder"),
        (["{a}", "{b}", "--grid", "{grid}", "--metric", "sse"], "--metric sse: unknown metric"),
        (["{a}", "{b}", "--grid", "{grid}", "--csv", "{root}/out.txt"], "--csv {root}/out.txt: writes a CSV file"),
        (["{a}", "{b}", "--grid", "{grid}", "--metric", "kl_per_dim"], "--metric kl_per_dim: no cell holds it"),
        (["{bare}", "{b}", "--grid", "{grid}"], "none of its 2 cells is done in STORE_A"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(stores, cli, args, message):
    _, a, b, _, root = stores
    values = {"a": a.root, "b": b.root, "root": root / "empty", "bare": root / "bare", "grid": root / "tiny.yaml"}
    (root / "empty").mkdir(exist_ok=True)
    (root / "bare" / "grids").mkdir(parents=True, exist_ok=True)  # a store with no cell
    result = cli("compare", *(arg.format(**values) for arg in args))
    assert result.returncode == 2 and message.format(**values) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

"""The README's Python API example, run as written, and the API's checks."""

import re
from pathlib import Path

import pytest

from benchmark import api
from benchmark.errors import BenchError

REPO = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    block = re.search(r"<!-- api-example:start -->\n```python\n(.*?)```\n<!-- api-example:end -->", text, re.S)
    assert block, "README.md: the API example block is missing"
    return block.group(1)


@pytest.mark.slow
def test_the_readme_example_runs_as_written(shared_data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BENCH_DATA_DIR", str(shared_data))  # as a user's shell would set it
    (tmp_path / "ablations").symlink_to(REPO / "ablations")
    scope: dict = {}
    exec(compile(readme_example(), "README.md", "exec"), scope)
    assert scope["summary"].done and not scope["summary"].failed
    done = scope["done"]
    assert list(done["conditioning"]) == ["concat"] and list(done["backbone"]) == ["mlp"]
    assert done["sse_image"].notna().all() and done["fid_domain"].notna().all()
    assert "sse_image" in capsys.readouterr().out
    report = scope["report"]
    assert report.name == "smoke.md" and "sse_image" in report.read_text()


def test_results_frame_has_a_row_per_cell_with_every_metric(tmp_path):
    from test_compare import SPEC

    from benchmark.grid.spec import build_grid
    from benchmark.runner.grid_run import RunOptions
    from benchmark.runner.grid_run import run_grid as run_cells
    from benchmark.store import CellStore

    grid = build_grid(SPEC, "tiny.yaml")
    run_cells(grid, [grid.cells[0]], CellStore(tmp_path), RunOptions(device="cpu"))
    frame = api.results_frame(tmp_path)
    assert list(frame["grid"]) == ["tiny", "tiny"] and list(frame["status"]) == ["done", "pending"]
    assert frame.loc[0, "sse_image"] > 0 and frame.loc[1, "sse_image"] != frame.loc[1, "sse_image"]  # NaN
    assert {"cell", "conditioning", "seed", "mse_pixel", "fid_domain", "trained_epochs"} <= set(frame.columns)


def test_the_api_refuses_what_the_commands_refuse(tmp_path):
    grid = api.load_grid(REPO / "ablations" / "smoke.yaml")
    with pytest.raises(BenchError, match="unknown option 'worker'"):
        api.run_grid(grid, tmp_path / "r", worker=2)
    with pytest.raises(BenchError, match="no such folder"):
        api.results_frame(tmp_path / "none")
    with pytest.raises(BenchError, match="base.epoch = 1: unknown cell field"):
        api.load_grid(REPO / "ablations" / "smoke.yaml", overrides=["epoch=1"])

"""Nothing published is ever lost: the store finds its own damage, and reports are never replaced badly.

One small grid is trained once per module; each test copies its store and damages the copy the ways a
full disk, a partial copy or a hand edit do."""

import json
import shutil
from pathlib import Path

import pytest
import yaml
from test_runner import write_grid

from benchmark.store import CellStatus, CellStore

AXES = {"conditioning": ["none", "concat", "additive", "film"]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A grid of four done cells (synthetic data, one epoch), its report published from the store."""
    from benchmark.commands import main

    root = tmp_path_factory.mktemp("trained")
    grid = write_grid(root / "four.yaml", "four", AXES)
    for args in (
        ["run", "--grid", grid, "--results", root / "results", "--device", "cpu"],
        ["report", "--grid", grid, "--results", root / "results", "--out", root / "reports"],
    ):
        with pytest.raises(SystemExit) as exited:
            main([str(a) for a in args])
        assert exited.value.code == 0
    return root


@pytest.fixture
def copy(trained, tmp_path):
    """A fresh copy of the trained grid, store and published report."""
    for name in ("results", "reports", "four.yaml"):
        source = trained / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    store = CellStore(tmp_path / "results")
    record = store.grid_record("four")
    ids = {entry["axes"]["conditioning"]: entry["id"] for entry in record["cells"]}
    return tmp_path, store, ids


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def damage_three(store: CellStore, ids: dict) -> dict[str, str]:
    """Truncated metrics.json, a config.json that is not JSON, a missing model.pt: cell id -> damaged file."""
    metrics = store.cell_dir(ids["none"]) / "metrics.json"
    metrics.write_bytes(metrics.read_bytes()[:100])
    (store.cell_dir(ids["concat"]) / "config.json").write_text("this is not JSON\n")
    (store.cell_dir(ids["additive"]) / "model.pt").unlink()
    return {ids["none"]: "metrics.json", ids["concat"]: "config.json", ids["additive"]: "model.pt"}


def test_every_way_of_damaging_a_cell_is_found(copy):
    _, store, ids = copy
    assert all(store.status(i) == CellStatus.DONE and store.verified(i) for i in ids.values())
    folder = store.cell_dir(ids["none"])
    cases = {
        "metrics.json truncated": ("metrics.json", lambda p: p.write_bytes(p.read_bytes()[:-40]), "not JSON"),
        "metrics value edited": (
            "metrics.json",
            lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "sse_image": 1.0})),
            "checksum mismatch",
        ),
        "config edited": (
            "config.json",
            lambda p: p.write_text(p.read_text().replace('"latent_dim": 4', '"latent_dim": 5')),
            "checksum mismatch",
        ),
        "log truncated": ("log.json", lambda p: p.write_bytes(p.read_bytes()[:-3]), "not JSON"),
        "log edited": ("log.json", lambda p: p.write_text(json.dumps(json.loads(p.read_text())[:1])), "checksum"),
        "config not JSON": ("config.json", lambda p: p.write_text("{"), "not JSON"),
        "metrics without protocol": ("metrics.json", lambda p: p.write_text('{"sse_image": 1.0}'), "missing key"),
        "checkpoint truncated": ("model.pt", lambda p: p.write_bytes(p.read_bytes()[:1000]), "checksum mismatch"),
        "checkpoint missing": ("model.pt", lambda p: p.unlink(), "missing"),
        "samples image truncated": ("samples.png", lambda p: p.write_bytes(p.read_bytes()[:50]), "checksum mismatch"),
        "config missing": ("config.json", lambda p: p.unlink(), "missing"),
    }
    pristine = snapshot(folder)
    for case, (name, damage, reason) in cases.items():
        damage(folder / name)
        found = CellStore(store.root).damage(ids["none"])
        assert store.status(ids["none"]) == CellStatus.DAMAGED, case
        assert found is not None and found.file == name and reason in found.reason, (case, found)
        for path, data in pristine.items():
            (folder / path).write_bytes(data)
        assert store.status(ids["none"]) == CellStatus.DONE, case


def test_status_report_check_and_run_on_a_damaged_store(copy, cli):
    root, store, ids = copy
    damaged = damage_three(store, ids)
    intact = ids["film"]
    grid, results, reports = root / "four.yaml", root / "results", root / "reports"

    status = cli("status", "--grid", grid, "--results", results)
    assert status.returncode == 0 and "Traceback" not in status.stderr
    assert "1 done, 0 failed, 0 pending, 3 damaged" in status.stdout
    for cell_id, name in damaged.items():
        line = next(li for li in status.stdout.splitlines() if li.startswith(f"damaged {cell_id}"))
        assert f"damaged {cell_id}: {name}:" in line

    check = cli("store", "check", "--results", results)
    assert check.returncode == 1
    assert "4 cells: 1 done, 0 failed, 0 pending, 3 damaged" in check.stdout
    for cell_id, name in damaged.items():
        assert f"damaged {cell_id}: {name}:" in check.stdout

    published = snapshot(reports)
    refused = cli("report", "--grid", grid, "--results", results, "--out", reports)
    assert refused.returncode == 2 and "rendering would drop them" in refused.stderr
    assert snapshot(reports) == published
    forced = cli("report", "--grid", grid, "--results", results, "--out", reports, "--force")
    assert forced.returncode == 0, forced.stderr
    text = (reports / "four.md").read_text()
    assert text.index("**Left out:** 3 damaged cells") < text.index("## Results")
    assert "1 done, 0 failed, 0 pending, 3 damaged." in text
    lines = [json.loads(line) for line in (reports / "four" / "cells.jsonl").read_text().splitlines()]
    assert [(line["id"], line["status"]) for line in lines if line["status"] == "done"] == [(intact, "done")]

    before = {i: (store.cell_dir(i) / "metrics.json").stat().st_mtime_ns for i in ids.values()}
    kept = (store.cell_dir(intact) / "metrics.json").read_bytes()
    run = cli("run", "--grid", grid, "--results", results, "--device", "cpu")
    assert run.returncode == 0, run.stderr
    assert "3 trained, 1 already done, 0 failed, 3 of them redone because damaged" in run.stdout
    assert (store.cell_dir(intact) / "metrics.json").read_bytes() == kept
    assert (store.cell_dir(intact) / "metrics.json").stat().st_mtime_ns == before[intact]
    assert all(store.status(i) == CellStatus.DONE for i in ids.values())
    aside = {p.name.split("-")[0]: p for p in (results / "damaged").iterdir()}
    assert set(aside) == set(damaged)
    assert (aside[ids["concat"]] / "config.json").read_text() == "this is not JSON\n"  # kept, not deleted
    assert cli("store", "check", "--results", results).returncode == 0


def test_redone_cells_equal_the_cells_before_the_damage(copy, cli):
    root, store, ids = copy
    original = {i: store.read(i, "metrics.json") for i in ids.values()}
    damage_three(store, ids)
    assert cli("run", "--grid", root / "four.yaml", "--results", root / "results", "--device", "cpu").returncode == 0
    for cell_id, metrics in original.items():
        again = store.read(cell_id, "metrics.json")
        assert {k: v for k, v in again.items() if k != "eval_seconds"} == {
            k: v for k, v in metrics.items() if k != "eval_seconds"
        }


def test_a_mistyped_store_leaves_the_published_report_byte_identical(copy, cli):
    root, _, _ = copy
    reports = root / "reports"
    published = snapshot(reports)
    assert published  # the report, its figures, its CSV and the findings index
    for results in (root / "no-such-store", root / "results" / "grids"):
        typo = cli("report", "--grid", root / "four.yaml", "--results", results, "--out", reports)
        assert typo.returncode == 2 and len(typo.stderr.splitlines()) == 1, typo.stderr
        assert snapshot(reports) == published
    empty = root / "empty-store"
    (empty / "grids").mkdir(parents=True)
    nothing = cli("report", "--grid", root / "four.yaml", "--results", empty, "--out", reports)
    assert nothing.returncode == 2 and "nothing to report" in nothing.stderr
    assert snapshot(reports) == published


def test_a_report_that_fails_midway_leaves_the_old_one_whole(copy, cli, monkeypatch):
    root, _, _ = copy
    reports = root / "reports"
    published = snapshot(reports)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full while drawing a figure")

    monkeypatch.setattr("benchmark.report.figures.training_curves", broken)
    with pytest.raises(RuntimeError):
        from benchmark.report.frame import from_grid_file
        from benchmark.report.render import render_report

        store = CellStore(root / "results")
        render_report(store, from_grid_file(store, root / "four.yaml"), reports)
    assert snapshot(reports) == published
    assert not [p for p in reports.iterdir() if p.name.startswith(".rendering")]


def test_rendering_again_from_the_same_store_gives_the_same_files(copy, cli):
    root, _, _ = copy
    reports = root / "reports"
    published = snapshot(reports)
    again = cli("report", "--grid", root / "four.yaml", "--results", root / "results", "--out", reports)
    assert again.returncode == 0, again.stderr
    assert snapshot(reports) == published


def test_evaluate_skips_a_damaged_cell_and_says_so(copy, cli):
    root, store, ids = copy
    damage_three(store, ids)
    evaluated = cli(
        "evaluate", "--grid", root / "four.yaml", "--results", root / "results", "--device", "cpu",
        "--metrics", "reconstruction",
    )  # fmt: skip
    assert evaluated.returncode == 1
    assert "1 measured" in evaluated.stdout and "3 damaged" in evaluated.stdout
    assert store.status(ids["film"]) == CellStatus.DONE and store.verified(ids["film"])


def test_a_remeasure_killed_at_any_write_leaves_a_cell_that_checks(copy, monkeypatch):
    """`bench evaluate` rewrites metrics.json and the images; a kill between any two writes must leave a
    done cell (old or new metrics), never a damaged one that `bench run` would retrain."""
    import benchmark.store.cells as cells

    _, store, ids = copy
    cell_id = ids["film"]
    metrics = store.read(cell_id, "metrics.json")
    images = {"samples": b"new samples", "reconstructions": b"new reconstructions"}
    real_write, real_write_json = cells.atomic_write, cells.write_json
    for kill_at in range(1, 5):
        writes = []

        def counting(write, writes=writes, kill_at=kill_at):
            def wrapped(*args, **kwargs):
                writes.append(args[0])
                if len(writes) == kill_at:
                    raise KeyboardInterrupt
                return write(*args, **kwargs)

            return wrapped

        monkeypatch.setattr(cells, "atomic_write", counting(real_write))
        monkeypatch.setattr(cells, "write_json", counting(real_write_json))
        with pytest.raises(KeyboardInterrupt):
            store.remeasure(cell_id, {**metrics, "sse_image": 1.0}, images)
        monkeypatch.setattr(cells, "atomic_write", real_write)
        monkeypatch.setattr(cells, "write_json", real_write_json)
        assert store.status(cell_id) == CellStatus.DONE, (kill_at, store.damage(cell_id))
    store.remeasure(cell_id, {**metrics, "sse_image": 1.0}, images)  # uninterrupted: every file vouched for
    assert store.status(cell_id) == CellStatus.DONE and store.read(cell_id, "metrics.json")["sse_image"] == 1.0
    (store.cell_dir(cell_id) / "samples.png").write_bytes(b"edited")
    assert store.status(cell_id) == CellStatus.DAMAGED


def test_a_published_report_renders_again_from_its_own_data_byte_for_byte(copy, cli):
    """The clone's case: no store, no checkpoints; the data published beside the report are enough."""
    import pandas as pd

    root, _, ids = copy
    reports = root / "reports"
    published = snapshot(reports)
    cells = pd.read_json(reports / "four" / "cells.jsonl", lines=True)  # one pandas call, one row per cell
    assert sorted(cells["id"]) == sorted(ids.values()) and set(cells["status"]) == {"done"}
    assert "nll_iw_se" in cells["metrics"][0] and "epoch" in cells["log"][0][0]
    shutil.rmtree(root / "results")
    again = cli("report", "--grid", root / "four.yaml", "--from-published", "--out", reports)
    assert again.returncode == 0, again.stderr
    assert snapshot(reports) == published
    assert "interpolation_none.png" in (reports / "four.md").read_text()


def test_a_report_published_before_its_data_renders_again_from_its_metrics_csv(copy, cli):
    """Reports of the first sessions carry metrics.csv only: their cells are rebuilt from the grid file with
    the overrides the report states, every id checked, and the re-rendered report says what it was made from;
    from then on it carries its data and renders again byte for byte."""
    root, _, ids = copy
    reports = root / "reports"
    for name in ("cells.jsonl", "grid.json"):
        (reports / "four" / name).unlink()
    shutil.rmtree(root / "results")
    before = (reports / "four.md").read_text()
    legacy = cli("report", "--grid", root / "four.yaml", "--from-published", "--out", reports)
    assert legacy.returncode == 0, legacy.stderr
    text = (reports / "four.md").read_text()
    assert text.startswith("# Report: four\n\n**Rendered from the headline metrics published in metrics.csv**")

    def first_finding(report: str) -> str:  # the training summary (convergence) was not in metrics.csv
        return report.split("## Findings")[1].split("\n- ")[1].split(" Not converged")[0]

    assert first_finding(before) == first_finding(text)
    published = snapshot(reports)
    again = cli("report", "--grid", root / "four.yaml", "--from-published", "--out", reports)
    assert again.returncode == 0, again.stderr
    assert snapshot(reports) == published
    # a grid file that no longer expands to the published ids is refused, nothing written
    grid = (root / "four.yaml").read_text()
    for name in ("cells.jsonl", "grid.json"):
        (reports / "four" / name).unlink()
    (root / "four.yaml").write_text(grid.replace("latent_dim: 4", "latent_dim: 5"))
    changed = cli("report", "--grid", root / "four.yaml", "--from-published", "--out", reports)
    assert changed.returncode == 2 and "the grid file changed since the report was published" in changed.stderr


def test_a_grid_goes_on_from_its_published_cells_in_a_store_that_never_held_them(copy, cli, monkeypatch):
    """`bench store restore`: a grid run in parts (another session, another machine). Two of the four cells are
    published; a new store restored from that report trains only the other two, and its report equals the one
    made from a store that trained all four together. Cells a store already holds are never touched."""
    import pandas as pd

    root, store, ids = copy
    grid, reports = root / "four.yaml", root / "reports"
    full_metrics = (reports / "four" / "metrics.csv").read_text()
    originals = {cell_id: store.read(cell_id, "metrics.json") for cell_id in ids.values()}
    for mode in ("additive", "film"):
        shutil.rmtree(store.cell_dir(ids[mode]))
    partial = cli("report", "--grid", grid, "--results", root / "results", "--out", reports, "--force")
    assert partial.returncode == 0, partial.stderr
    assert "partial: 2 of 4 cells done" in (reports / "four" / "overview.json").read_text()

    later = CellStore(root / "later")
    monkeypatch.chdir(root)  # bench run looks for the grid's published report in ./reports
    hint = "2 of these cells are done in reports/four/cells.jsonl: `bench store restore"
    assert hint in cli("run", "--grid", grid, "--results", later.root, "--dry-run").stdout
    restored = cli("store", "restore", "--grid", grid, "--results", later.root, "--reports", reports)
    assert restored.returncode == 0, restored.stderr
    assert "restored 2 cells" in restored.stdout and "go on with: bench run --grid" in restored.stdout
    for mode, status in {"none": "done", "concat": "done", "additive": "pending", "film": "pending"}.items():
        assert later.status(ids[mode]).value == status
    assert later.read(ids["none"], "metrics.json") == originals[ids["none"]] and later.verified(ids["none"])
    kept = snapshot(later.root / ids["none"])

    again = cli("store", "restore", "--grid", grid, "--results", later.root, "--reports", reports)
    assert "restored 0 cells" in again.stdout and "2 already there" in again.stdout
    assert "of these cells are done" not in cli("run", "--grid", grid, "--results", later.root, "--dry-run").stdout
    ran = cli("run", "--grid", grid, "--results", later.root, "--device", "cpu")
    assert ran.returncode == 0, ran.stderr
    assert snapshot(later.root / ids["none"]) == kept  # restored, not retrained
    for mode in ("additive", "film"):  # trained here, to the numbers of the first run
        assert later.read(ids[mode], "metrics.json")["sse_image"] == originals[ids[mode]]["sse_image"]
    image = f"cells/{ids['none']}-samples.png"  # a restored cell's image, published by another grid's report
    (reports / "other" / "cells").mkdir(parents=True)
    drawn = (reports / "four" / image).read_bytes()
    (reports / "four" / image).rename(reports / "other" / image)
    whole = cli("report", "--grid", grid, "--results", later.root, "--out", reports)
    assert whole.returncode == 0, whole.stderr
    assert (reports / "four" / "metrics.csv").read_text() == full_metrics
    assert (reports / "four" / image).read_bytes() == drawn and f"four/{image}" in (reports / "four.md").read_text()
    assert "partial" not in (reports / "four" / "overview.json").read_text()
    cells = pd.read_json(reports / "four" / "cells.jsonl", lines=True)
    assert sorted(cells["id"]) == sorted(ids.values()) and set(cells["status"]) == {"done"}

    evaluated = cli("evaluate", "--grid", grid, "--results", later.root, "--device", "cpu", "--metrics", "ssim")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "2 measured" in evaluated.stdout and "2 done cells have no checkpoint to measure" in evaluated.stdout
    assert snapshot(later.root / ids["none"]) == kept


def test_restore_replaces_what_a_crash_left_and_keeps_a_saved_training_state(copy, cli):
    """A folder with a config and nothing else (a crash before the first save) is redone from the record; a
    folder with a saved training state is a cell in progress and stays as it is, and so does a cell whose lock
    another run holds."""
    root, _, ids = copy
    later = CellStore(root / "later")
    for mode, leftover in (("none", "config.json"), ("concat", "resume.pt")):
        later.cell_dir(ids[mode]).mkdir(parents=True)
        (later.cell_dir(ids[mode]) / leftover).write_text("left by a crash\n")
    with later.claim(ids["film"]) as mine:  # another run trains it
        assert mine
        restored = cli(
            "store", "restore", "--grid", root / "four.yaml", "--results", later.root, "--reports", root / "reports"
        )
    assert restored.returncode == 0, restored.stderr
    assert "restored 2 cells" in restored.stdout and "1 already there" in restored.stdout
    assert "1 busy in another run" in restored.stdout and later.status(ids["film"]) == CellStatus.PENDING
    assert later.status(ids["none"]) == CellStatus.DONE and later.verified(ids["none"])
    assert later.status(ids["concat"]) == CellStatus.PENDING
    status = cli("status", "--grid", root / "four.yaml", "--results", later.root).stdout
    assert "pending, resumes from its saved state" in status and "done, no checkpoint (restored)" in status
    assert (later.cell_dir(ids["concat"]) / "resume.pt").read_text() == "left by a crash\n"


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        ("no report", "was published without its data"),
        ("line not JSON", "cells.jsonl: line 2 is not JSON"),
        ("line without its metrics", "cells.jsonl: line 1 lacks metrics"),
        ("config edited by hand", "cells.jsonl: line 1: its config is cell"),
        ("metrics without their protocol", "its metrics is not a mapping with protocol"),
        ("a failure without its reason", "its failed is not a mapping with reason"),
        ("log not a list", "its log is not a list"),
        ("grid file changed since", "the grid file changed since the report was published"),
        ("results is a file", "is a file, not a folder"),
    ],
)
def test_a_restore_from_damaged_published_data_is_one_line_and_writes_nothing(copy, cli, damage, expected):
    root, _, _ = copy
    cells_file, results = root / "reports" / "four" / "cells.jsonl", root / "later"
    lines = cells_file.read_text().splitlines()
    first = json.loads(lines[0])
    if damage == "no report":
        shutil.rmtree(root / "reports" / "four")
    elif damage == "line not JSON":
        cells_file.write_text("\n".join([lines[0], lines[1][:40], *lines[2:]]) + "\n")
    elif damage == "line without its metrics":
        del first["metrics"]
        cells_file.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    elif damage == "config edited by hand":
        first["config"]["cell"]["epochs"] += 1
        cells_file.write_text("\n".join([*lines[1:], json.dumps(first)]) + "\n")
        expected = expected.replace("line 1", f"line {len(lines)}")
    elif damage == "metrics without their protocol":
        del first["metrics"]["protocol"]
        cells_file.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    elif damage == "a failure without its reason":
        first.update(status="failed", metrics=None, failed={"provenance": {}})
        cells_file.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    elif damage == "log not a list":
        first["log"] = {"epoch": 1}
        cells_file.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    elif damage == "grid file changed since":
        grid = yaml.safe_load((root / "four.yaml").read_text())
        grid["base"]["epochs"] += 1
        (root / "four.yaml").write_text(yaml.safe_dump(grid))
    else:
        results.write_text("not a store\n")
    before = snapshot(root)
    refused = cli("store", "restore", "--grid", root / "four.yaml", "--results", results, "--reports", root / "reports")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and expected in refused.stderr, refused.stderr
    assert snapshot(root) == before

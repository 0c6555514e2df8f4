import hashlib
import json
import math

import pandas as pd
import pytest
import yaml
from PIL import Image

from benchmark.drawing import png_bytes
from benchmark.fileio import write_json
from benchmark.grid import load_grid
from benchmark.report.frame import from_grid_file
from benchmark.report.render import render_report
from benchmark.report.stats import at_place_of, comparisons, findings, holm, interval_text, sentence, t_interval
from benchmark.store import CellStore

T_975_DF2 = 4.302652729911275  # 97.5% quantile of Student's t with 2 degrees of freedom


def sse_of(conditioning: str, latent: int, seed: int) -> float:
    return 30.0 - 2 * (conditioning == "concat") - latent + 0.5 * seed * seed


@pytest.fixture
def store_and_grid(tmp_path):
    grid_file = tmp_path / "toy.yaml"
    spec = {
        "name": "toy",
        "description": "A store written by hand.",
        "base": {"dataset": "mnist"},
        "axes": {"conditioning": ["none", "concat"], "latent_dim": [2, 4]},
        "seeds": [0, 1, 2],
    }
    grid_file.write_text(yaml.safe_dump(spec))
    grid = load_grid(grid_file)
    store = CellStore(tmp_path / "results")
    store.record_grid(grid.name, str(grid_file), [{"id": c.id, "axes": dict(c.axis_values)} for c in grid.cells])
    import torch

    image = png_bytes(torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(0)))
    for cell in grid.cells:
        axes = dict(cell.axis_values)
        folder = store.cell_dir(cell.id)
        if axes == {"conditioning": "concat", "latent_dim": 4, "seed": 2}:
            continue  # pending
        provenance = {"packages": {"torch": "x"}, "git_commit": "abc", "device": "cpu", "wall_seconds": 30.0}
        write_json(folder / "config.json", {**cell.resolved(), "provenance": provenance})
        if axes == {"conditioning": "none", "latent_dim": 4, "seed": 2}:
            write_json(folder / "failed.json", {"reason": "non-finite loss at epoch 1: loss=nan", "provenance": {}})
            continue
        sse = sse_of(axes["conditioning"], axes["latent_dim"], axes["seed"])
        metrics = {
            "sse_image": sse,
            "ssim": 0.5 + 0.01 * sse,
            "cond_acc": 0.1 * (axes["conditioning"] == "concat"),
            "protocol": {"eval": cell.eval.model_dump(), "unavailable": {"fid_inception": "no weights"}},
        }
        write_json(folder / "metrics.json", metrics)
        write_json(
            folder / "log.json",
            [{"epoch": e, "loss": 100.0 / e, "recon": 90.0 / e, "kl": 10.0} for e in (1, 2)],
        )
        for kind in ("samples", "reconstructions"):
            (folder / f"{kind}.png").write_bytes(image)
    return store, grid_file


def test_t_interval_by_hand():
    mean, half, n = t_interval([1.0, 2.0, 6.0])
    assert (mean, n) == (3.0, 3)
    assert half == pytest.approx(T_975_DF2 * math.sqrt(7.0) / math.sqrt(3))
    assert math.isnan(t_interval([4.0])[1])


def test_report_table_values_and_intervals(store_and_grid, tmp_path):
    store, grid_file = store_and_grid
    path = render_report(store, from_grid_file(store, grid_file), tmp_path / "reports")
    text = path.read_text()
    values = [sse_of("none", 2, s) for s in (0, 1, 2)]  # 28, 28.5, 30
    mean = sum(values) / 3
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
    half = T_975_DF2 * sd / math.sqrt(3)  # 2.59: two significant digits, 2.6, so the mean to one decimal
    assert half == pytest.approx(2.5856, abs=1e-4)
    assert f"| none | 2 | {mean:.1f} ± 2.6 |" in text
    # concat, latent 4 has the lowest sse (two seeds done): marked best
    assert [sse_of("concat", 4, s) for s in (0, 1)] == [24.0, 24.5]  # t(0.975, 1) * 0.354 / sqrt 2 = 3.18
    assert "**24.2 ± 3.2**" in text
    protocol = text.split("## Evaluation protocol")[1].split("## Provenance")[0]
    assert "- `sse_image`: mean over test images" in protocol and "`nll_iw`:" not in protocol  # measured only
    assert "Not measured here:\n- `fid_inception`: no weights" in protocol
    assert "## Cells\n\n10 done, 1 failed, 1 pending." in text
    assert "non-finite loss at epoch 1" in text
    assert "`fid_inception`: no weights" in text
    csv = pd.read_csv(tmp_path / "reports" / "toy" / "metrics.csv")
    assert len(csv[csv.metric == "sse_image"]) == 10
    assert set(csv.columns) >= {"cell", "conditioning", "latent_dim", "seed", "metric", "value"}


def test_a_grid_shows_the_kl_read_off_its_dimensions_beside_the_question_s_metrics(store_and_grid, tmp_path):
    """`shows: [kl, active_units]`: the results table gains the rate (the sum of the stored kl_per_dim, a derived
    metric no group computes, so no cell goes stale) and the active units, neither ranked nor compared."""
    store, grid_file = store_and_grid
    for cell_id in store.cell_ids():
        path = store.cell_dir(cell_id) / "metrics.json"
        if path.exists():
            metrics = json.loads(path.read_text())
            sse = metrics["sse_image"]
            write_json(path, {**metrics, "kl_per_dim": [sse / 10, 0.25, 0.0], "active_units": 2})

    def results_table(text: str) -> tuple[list[str], list[list[str]]]:
        lines = [line for line in text.split("## Results")[1].splitlines() if line.startswith("| ")]
        cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
        return cells[0], cells[1:]

    plain, _ = results_table(render_report(store, from_grid_file(store, grid_file), tmp_path / "plain").read_text())
    assert "kl (nats)" not in plain and "active_units" not in plain
    spec = yaml.safe_load(grid_file.read_text())
    grid_file.write_text(yaml.safe_dump({**spec, "shows": ["kl", "active_units"]}))
    text = render_report(store, from_grid_file(store, grid_file), tmp_path / "reports").read_text()
    kls = [sse_of("none", 2, s) / 10 + 0.25 for s in (0, 1, 2)]  # 3.05, 3.10, 3.25
    mean, half = sum(kls) / 3, T_975_DF2 * pd.Series(kls).std() / math.sqrt(3)  # 3.133 ± 0.260
    columns, rows = results_table(text)
    first = rows[0]
    assert first[:2] == ["none", "2"] and first[columns.index("kl (nats)")] == f"{mean:.2f} ± {half:.2f}"
    assert [row[columns.index("active_units")] for row in rows] == ["2"] * len(rows)  # shown: no best in bold
    protocol = text.split("## Evaluation protocol")[1].split("## Provenance")[0]
    assert "- `kl`: sum of kl_per_dim over the latent dimensions" in protocol
    assert "**active_units**" not in text.split("## Findings")[1]  # shown, never compared
    plain_protocol = (tmp_path / "plain" / "toy.md").read_text().split("## Evaluation protocol")[1]
    assert "`kl`" not in plain_protocol  # a derived metric is defined where a grid shows it


def test_a_protocol_caveat_comes_before_any_number(store_and_grid, tmp_path):
    store, grid_file = store_and_grid
    warning = "The text encoder (cvae-tiny-clip) is untrained: its weights are random."
    for path in store.root.glob("*/metrics.json"):
        metrics = json.loads(path.read_text())
        metrics["protocol"]["conditions"] = {"warnings": [warning]}
        write_json(path, metrics)
    text = render_report(store, from_grid_file(store, grid_file), tmp_path / "reports").read_text()
    assert text.startswith(f"# Report: toy\n\n**Caveat:** {warning}\n\nA store written by hand.")
    assert text.count(warning) == 1


def test_the_protocol_defines_a_metric_that_only_some_cells_measured(store_and_grid, tmp_path):
    store, grid_file = store_and_grid
    first = load_grid(grid_file).cells[0].id  # done: the cell whose protocol the report quotes
    other = next(p for p in store.root.glob("*/metrics.json") if p.parent.name != first)
    write_json(other, {**json.loads(other.read_text()), "nll_marginal": 90.0})
    text = render_report(store, from_grid_file(store, grid_file), tmp_path / "reports").read_text()
    assert "- `nll_marginal`: -log p(x)" in text.split("## Evaluation protocol")[1]


def test_every_referenced_figure_exists_and_is_a_png(store_and_grid, tmp_path):
    import re

    store, grid_file = store_and_grid
    out = tmp_path / "reports"
    text = render_report(store, from_grid_file(store, grid_file), out).read_text()
    references = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert any("metrics_vs_latent_dim" in r for r in references)
    assert any("training_curves" in r for r in references)
    assert any("heatmap" in r for r in references)
    for reference in references:
        with Image.open(out / reference) as image:
            assert image.format == "PNG"


def test_second_run_is_byte_identical(store_and_grid, tmp_path):
    store, grid_file = store_and_grid

    def digest(folder):
        return {
            p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }

    render_report(store, from_grid_file(store, grid_file), tmp_path / "a")
    render_report(store, from_grid_file(store, grid_file), tmp_path / "b")
    first, second = digest(tmp_path / "a"), digest(tmp_path / "b")
    assert first == second and len(first) > 5


def test_paired_comparison_sentence(store_and_grid):
    from benchmark.report.frame import cells_frame

    store, grid_file = store_and_grid
    grid = from_grid_file(store, grid_file)
    frame = cells_frame(store, grid)
    sentences = [sentence(c) for c in comparisons(frame, grid.axes, ["sse_image"]) if c.axis == "conditioning"]
    # pairs: latent 2 seeds 0-2 and latent 4 seeds 0-1 (one side failed or pending otherwise), each differ by -2
    assert sentences == [
        "conditioning=concat lowers sse_image by 2 relative to conditioning=none (better) "
        "(no test: the pairs do not vary; 5 pairs)"
    ]
    one_pair = frame[(frame["seed"] == 0) & (frame["latent_dim"] == 2)]
    (single,) = [sentence(c) for c in comparisons(one_pair, grid.axes, ["sse_image"]) if c.axis == "conditioning"]
    assert single.endswith("(1 pair, one seed: no interval, no test)")


def test_published_figures_are_compared_in_words(store_and_grid, tmp_path):
    store, grid_file = store_and_grid
    spec = yaml.safe_load(grid_file.read_text())
    spec["published"] = {"source": "A paper.", "epochs": 100, "metrics": {"sse_image": 20.0, "ssim": 0.5}}
    grid_file.write_text(yaml.safe_dump(spec))
    text = render_report(store, from_grid_file(store, grid_file), tmp_path / "reports").read_text()
    assert (
        "**These cells trained for 1, 5 epochs, the published ones for 100**" in text
        or "published ones for 100" in text
    )
    # every variant's mean sse (26-28.x) is above 20; ssim (0.76-0.79) is above 0.5
    # concat's sse over its 5 done cells: 26, 26.5, 28, 24, 24.5 -> 25.8, t-interval half-width 1.99 -> 2.0
    assert (
        "- sse_image: every variant here is higher than the published 20; the closest is conditioning=concat at 25.8 ± 2.0."
        in text
    )
    assert "- ssim: every variant here is higher than the published 0.5" in text


def test_learning_curve_against_a_published_figure(store_and_grid, tmp_path):
    store, grid_file = store_and_grid
    spec = yaml.safe_load(grid_file.read_text())
    spec["published"] = {"source": "A paper.", "metrics": {"sse_image": 22.0, "ssim": 0.99}}
    grid_file.write_text(yaml.safe_dump(spec))
    grid = from_grid_file(store, grid_file)
    for entry in grid.cells:
        if store.status(entry["id"]).value != "done":
            continue
        concat = entry["axes"]["conditioning"] == "concat"
        config = store.read(entry["id"], "config.json")
        config["cell"]["curve_size"] = 100
        write_json(store.cell_dir(entry["id"]) / "config.json", config)
        log = [  # concat: 28, 20, 12; none: 32, 24, 16
            {
                "epoch": e,
                "loss": 1.0,
                "recon": 1.0,
                "kl": 0.0,
                "test_sse_image": 40.0 - 8 * e - 4 * concat,
                "test_ssim": 0.5,
            }
            for e in (1, 2, 3)
        ]
        write_json(store.cell_dir(entry["id"]) / "log.json", log)
    text = render_report(store, grid, tmp_path / "reports").read_text()
    assert "measured sse_image, ssim on the first 100 test images" in text
    assert "- sse_image, conditioning=concat: reaches 22 at epoch 2 (12 after epoch 3)" in text
    assert "- sse_image, conditioning=none: reaches 22 at epoch 3 (16 after epoch 3)" in text
    assert "- ssim, conditioning=none: not reached (0.5 after epoch 3)" in text
    assert (tmp_path / "reports" / "toy" / "learning_curves.png").exists()


def test_a_published_table_is_compared_row_by_row_with_its_cells(store_and_grid, tmp_path):
    store, grid_file = store_and_grid
    spec = yaml.safe_load(grid_file.read_text())
    spec["published"] = {
        "source": "A table.",
        "rows": [
            {"where": {"conditioning": "concat", "latent_dim": 2}, "metrics": {"sse_image": 20.0}},
            {"where": {"conditioning": "concat", "latent_dim": 4}, "metrics": {"sse_image": 20.0}},
            {"where": {"conditioning": "none", "latent_dim": 2}, "metrics": {"target_xent_elbo": 50.0}},
        ],
    }
    grid_file.write_text(yaml.safe_dump(spec))
    for cell in load_grid(grid_file).cells:  # a metric no table or figure shows: only the published table
        if dict(cell.axis_values) in ({"conditioning": "none", "latent_dim": 2, "seed": s} for s in (0, 1, 2)):
            path = store.cell_dir(cell.id) / "metrics.json"
            write_json(path, {**json.loads(path.read_text()), "target_xent_elbo": 49.0})
    text = render_report(store, from_grid_file(store, grid_file), tmp_path / "reports").read_text()
    assert "| conditioning=none, latent_dim=2 | target_xent_elbo | 50 | 49 (n = 3) | -1 |" in text
    values = [sse_of("concat", 2, s) for s in (0, 1, 2)]  # 26, 26.5, 28
    mean, half, _ = t_interval(values)
    expected = f"| conditioning=concat, latent_dim=2 | sse_image | 20 | {interval_text(mean, half)} (n = 3) | 6.8 |"  # to the interval's place
    assert expected in text
    assert "| conditioning=concat, latent_dim=4 | sse_image | 20 | 24.2 ± 3.2 (n = 2) | 4.2 |" in text  # seed 2 pending


def test_a_report_says_which_overrides_its_cells_were_run_with(store_and_grid, tmp_path):
    from benchmark.runner.grid_run import RunOptions, run_grid

    store, grid_file = store_and_grid
    overridden = load_grid(grid_file, ["epochs=2", "eval.recon_size=10"])
    assert overridden.overrides == ("epochs=2", "eval.recon_size=10")
    run_grid(overridden, [], store, RunOptions(device="cpu"))  # records the grid's cells, trains nothing
    text = render_report(store, from_grid_file(store, grid_file), tmp_path / "reports").read_text()
    assert "**Run with** `--override epochs=2 --override eval.recon_size=10`: these settings" in text
    spec = yaml.safe_load(grid_file.read_text())
    grid_file.write_text(yaml.safe_dump({**spec, "base": {**spec["base"], "epochs": 2}}))  # the recipe moved in
    text = render_report(store, from_grid_file(store, grid_file), tmp_path / "reports").read_text()
    assert "**Run with** `--override eval.recon_size=10`: these settings" in text
    run_grid(load_grid(grid_file), [], store, RunOptions(device="cpu"))  # the file as it is
    assert "Run with" not in render_report(store, from_grid_file(store, grid_file), tmp_path / "reports").read_text()


def test_published_figures_compared_only_with_the_cells_they_describe(store_and_grid, tmp_path):
    store, grid_file = store_and_grid
    spec = yaml.safe_load(grid_file.read_text())
    spec["published"] = {"source": "A VAE.", "where": {"conditioning": "none"}, "metrics": {"sse_image": 20.0}}
    grid_file.write_text(yaml.safe_dump(spec))
    text = render_report(store, from_grid_file(store, grid_file), tmp_path / "reports").read_text()
    assert "Compared: the cells with conditioning=none." in text
    section = text.split("## Against the published figures")[1].split("##")[0]
    assert "latent_dim=2" in section and "conditioning=concat" not in section
    # latent_dim=2, conditioning=none: sse 28, 28.5, 30 -> mean 28.83, t-interval half-width 2.59 -> 2.6,
    # so the mean and its difference from 20 are printed to one decimal
    assert "| sse_image | 20 | 28.8 ± 2.6 (n = 3) (8.8) |" in section


def test_a_report_says_when_its_cells_used_two_domain_classifiers(store_and_grid, tmp_path):
    store, grid_file = store_and_grid
    grid = from_grid_file(store, grid_file)
    done = [c["id"] for c in grid.cells if store.status(c["id"]).value == "done"]
    for k, cell_id in enumerate(done):
        metrics = store.read(cell_id, "metrics.json")
        key = "mnist-aaaaaaaaaaaa" if k < 3 else "mnist-bbbbbbbbbbbb"
        metrics["protocol"]["domain_classifier"] = {"key": key, "test_accuracy": 0.99}
        write_json(store.cell_dir(cell_id) / "metrics.json", metrics)
    text = render_report(store, grid, tmp_path / "out").read_text()
    assert (
        f"2 different domain classifiers (`mnist-aaaaaaaaaaaa` by 3 cells; `mnist-bbbbbbbbbbbb` by {len(done) - 3} cells)"
        in text
    )
    for cell_id in done[:3]:
        metrics = store.read(cell_id, "metrics.json")
        metrics["protocol"]["domain_classifier"]["key"] = "mnist-bbbbbbbbbbbb"
        write_json(store.cell_dir(cell_id) / "metrics.json", metrics)
    assert "different domain classifiers" not in render_report(store, grid, tmp_path / "out").read_text()


def test_holm_against_a_hand_worked_example():
    # p sorted: 0.01 (x4 = 0.04), 0.02 (x3 = 0.06), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> kept monotone: 0.06)
    assert holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    # capped at 1; nan (no test) neither counted nor adjusted: m = 2 here
    adjusted = holm([0.6, float("nan"), 0.2])
    assert adjusted[0] == pytest.approx(0.6) and adjusted[2] == pytest.approx(0.4) and math.isnan(adjusted[1])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def _hand_frame(effects: dict[str, float], noise: list[float]) -> pd.DataFrame:
    """sse_image = 20 + effect of the mechanism + a per-seed noise shared by every mechanism (the pairing)
    + a small per-(mechanism, seed) wobble, so paired differences vary a little."""
    rows = []
    for m, (name, effect) in enumerate(effects.items()):
        for seed, shared in enumerate(noise):
            wobble = 0.05 * ((seed * 7 + m * 3) % 5 - 2)
            rows.append(
                {"conditioning": name, "seed": seed, "status": "done", "sse_image": 20 + effect + shared + wobble}
            )
    return pd.DataFrame(rows)


def test_the_one_sentence_answer_says_what_the_comparisons_found():
    from benchmark.report.stats import answer_sentence

    axes, noise = ["conditioning", "seed"], [0.0, 1.5, -1.0, 0.7, 2.0]

    def answer(effects: dict) -> str:
        frame = _hand_frame(effects, noise)
        return answer_sentence(frame, comparisons(frame, axes, ["sse_image"]), axes, ["sse_image"], "conditioning")

    # concat beats both others by 3 after Holm: best outright
    assert answer({"concat": 0.0, "additive": 3.0, "film": 3.1}) == (
        "conditioning=concat is significantly best on sse_image."
    )
    # film is 0.1 from concat: not separable, so concat only leads
    assert answer({"concat": 0.0, "additive": 3.0, "film": 0.1}) == (
        "conditioning=concat leads on sse_image: significantly ahead of additive, not of film."
    )
    # lower sse is better: additive 3 below the others wins, not concat
    assert answer({"concat": 3.0, "additive": 0.0, "film": 3.1}).startswith("conditioning=additive is significantly")
    # a level whose cells all failed is not beaten: the answer says it went untested
    frame = _hand_frame({"concat": 0.0, "additive": 3.0, "film": 3.1}, noise)
    frame.loc[frame["conditioning"] == "film", "status"] = "failed"
    found = comparisons(frame, axes, ["sse_image"])
    assert answer_sentence(frame, found, axes, ["sse_image"], "conditioning") == (
        "conditioning=concat leads on sse_image: significantly ahead of additive; "
        "conditioning=concat was not tested against film on sse_image."
    )
    # no real difference: the answer states the largest difference its tests could have missed
    null = answer({"concat": 0.0, "additive": 0.02, "film": 0.01})
    assert null.startswith("no significant difference on sse_image at this scale (differences of ")
    assert null.endswith(" or more would have been detected with 80% power).")


def test_findings_name_the_winner_the_comparisons_found():
    frame = _hand_frame({"concat": 0.0, "additive": 3.0, "film": 0.1}, [0.0, 1.5, -1.0, 0.7, 2.0])
    found = comparisons(frame, ["conditioning", "seed"], ["sse_image"])
    assert len(found) == 3 and all(c.p_holm >= c.p for c in found)
    (line,) = findings(frame, found, ["conditioning", "seed"], ["sse_image"])
    assert line.startswith("**sse_image**: conditioning=concat has the best mean")
    # concat beats additive by 3 (significant after Holm); film is 0.1 away: not significant
    assert "significantly better than additive (by 3" in line
    assert "**not significantly different** from film" in line
    flipped = _hand_frame({"concat": 3.0, "additive": 0.0, "film": 3.1}, [0.0, 1.5, -1.0, 0.7, 2.0])
    (line,) = findings(
        flipped, comparisons(flipped, ["conditioning", "seed"], ["sse_image"]), ["conditioning", "seed"], ["sse_image"]
    )
    assert line.startswith("**sse_image**: conditioning=additive has the best mean")


def test_zipped_axes_are_compared_as_one_with_a_note():
    """coco_mini zips backbone with image_size: no pair differs in one of them alone, so the pairs are the
    cells that differ in both, compared once, and every sentence says the other changes too. (A metric whose
    value does not depend on the image size: active units.)"""
    frame = _hand_frame({"conv": 0.0, "article-coco": 3.0}, [0.0, 1.5, -1.0, 0.7, 2.0])
    frame = frame.rename(columns={"conditioning": "backbone", "sse_image": "active_units"})
    frame["image_size"] = frame["backbone"].map({"conv": 64, "article-coco": 128})
    axes = ["backbone", "image_size", "seed"]
    (found,) = comparisons(frame, axes, ["active_units"])
    assert (found.axis, found.along, found.n) == ("backbone", ("image_size",), 5)
    assert found.mean == pytest.approx(3.0, abs=0.2) and found.significant
    (line,) = findings(frame, [found], axes, ["active_units"], only_axis="image_size")
    assert line.startswith("**active_units**: backbone=article-coco (image_size changes with it) has the best mean")
    crossed = pd.concat([frame, frame.assign(image_size=frame["image_size"].map({64: 128, 128: 64}))])
    assert {c.along for c in comparisons(crossed, axes, ["active_units"])} == {()}  # a full cross: no zip
    assert comparisons(frame.rename(columns={"active_units": "mse_pixel"}), axes, ["mse_pixel"]) == []


def test_a_published_claim_is_checked_against_the_comparisons():
    from benchmark.report.stats import claim_verdict

    frame = _hand_frame({"concat": 0.0, "additive": 3.0, "film": 0.1}, [0.0, 1.5, -1.0, 0.7, 2.0])
    found = {frozenset((c.a, c.b)): c for c in comparisons(frame, ["conditioning", "seed"], ["sse_image"])}
    additive, film = found[frozenset(("concat", "additive"))], found[frozenset(("concat", "film"))]
    assert claim_verdict(additive, "concat").startswith("**Holds here**: difference 3")
    assert claim_verdict(additive, "additive").startswith("**Reversed here**: difference 3")
    assert claim_verdict(film, "concat").startswith("**Not significant here**")
    assert claim_verdict(None, "concat") == "Not testable here: no paired cells."


def test_intervals_are_printed_to_the_precision_they_support():
    assert interval_text(11.7412, 0.4671) == "11.74 ± 0.47"
    assert interval_text(0.014982, 0.0005957) == "0.01498 ± 0.00060"
    assert interval_text(0.5, 0.0996) == "0.50 ± 0.10"  # the half-width rounds up to 0.10: two digits, not 0.100
    assert interval_text(1234.5, 47.3) == "1,234 ± 47"
    assert interval_text(12345.0, 473.0) == "12,340 ± 470"
    assert interval_text(1104868.0, 0.0) == "1,104,868"  # a count equal in every seed
    assert interval_text(3.0, float("nan")) == "3"  # one seed: no interval
    assert interval_text(0.1, 4.2e-17) == "0.1"  # equal by definition but for float rounding
    assert at_place_of(-2.94, 1.7) == "-2.9"  # a difference beside 68.9 ± 1.7
    assert at_place_of(-123.4, 47.0) == "-123"
    assert at_place_of(-0.02455, 0.11) == "-0.02"


def test_ranking_agreement_between_two_scales():
    from benchmark.report.ranking import ranking_agreement

    here = _hand_frame({"concat": 0.0, "additive": 3.0, "film": 1.0}, [0.0, 1.0])  # concat < film < additive
    there = _hand_frame({"concat": 0.0, "additive": 1.0, "film": 3.0}, [0.0, 1.0])  # concat < additive < film
    (row,) = ranking_agreement(here, there, ["conditioning", "seed"], ["sse_image"]).to_dict("records")
    assert row["ranking here"] == "concat > film > additive"
    assert row["ranking there"] == "concat > additive > film"
    assert row["kendall_tau"] == pytest.approx(1 / 3, abs=0.01) and row["same best"] and row["cells"] == 6
    reversed_ = _hand_frame({"concat": 3.0, "additive": 0.0, "film": 1.0}, [0.0, 1.0])
    (row,) = ranking_agreement(here, reversed_, ["conditioning", "seed"], ["sse_image"]).to_dict("records")
    assert row["kendall_tau"] == pytest.approx(-1.0) and not row["same best"]


def test_the_findings_index_carries_each_question_with_the_answer_its_report_found(store_and_grid, tmp_path):
    from benchmark.report.index import write_index

    store, grid_file = store_and_grid
    spec = yaml.safe_load(grid_file.read_text())
    spec["question"] = {"text": "Does concat help?", "axis": "conditioning", "metrics": ["sse_image"]}
    grid_file.write_text(yaml.safe_dump(spec))
    out = tmp_path / "reports"
    render_report(store, from_grid_file(store, grid_file), out)
    (out / "older.md").write_text("# Report: older\n")
    index = write_index(out).read_text()
    assert "## Does concat help?\n" in index
    # concat lowers sse by exactly 2 in every pair: the best mean, with no test possible (no spread)
    assert "- **sse_image**: conditioning=concat has the best mean" in index
    assert (
        "Scale: all training images, 5 epochs, 3 seeds, 28 px, 10,000 generated samples per cell; partial: 10 of 12 "
        "cells done. Report: [toy.md](toy.md)" in index
    )  # one cell pending, one failed
    assert "## Other reports\n\n- [older.md](older.md)" in index
    assert "Beyond CPU" not in index
    spec["beyond_cpu"] = "The 128 px level needs a GPU: 21 h here."
    grid_file.write_text(yaml.safe_dump(spec))
    report = render_report(store, from_grid_file(store, grid_file), out).read_text()
    assert "**Beyond CPU**: The 128 px level needs a GPU: 21 h here.\n" in report
    assert "**Beyond CPU**: The 128 px level needs a GPU: 21 h here.\n" in write_index(out).read_text()
    del spec["beyond_cpu"]
    assert "Within" not in index
    spec["findings_by"] = ["latent_dim"]  # then the question is answered at each latent size too
    grid_file.write_text(yaml.safe_dump(spec))
    render_report(store, from_grid_file(store, grid_file), out)
    index = write_index(out).read_text()
    for latent in (2, 4):
        assert f"- Within latent_dim={latent}: **sse_image**: conditioning=concat has the best mean" in index
    spec["axes"]["latent_dim"] = [2, 4, 8]  # a level with no cell run yet is named
    grid_file.write_text(yaml.safe_dump(spec))
    grown = load_grid(grid_file)
    store.record_grid(grown.name, str(grid_file), [{"id": c.id, "axes": dict(c.axis_values)} for c in grown.cells])
    render_report(store, from_grid_file(store, grid_file), out)
    assert "; partial: 10 of 18 cells done (none done at latent_dim=8)." in write_index(out).read_text()


@pytest.mark.parametrize("name", ["smoke", "binarization_draws"])
def test_a_committed_report_renders_again_from_the_repository_alone(name, tmp_path):
    """A clone has no store: the data published beside the report give the same text, index entry and data
    file (figures are compared by eye; their bytes depend on the machine's font rendering)."""
    import shutil
    from pathlib import Path

    from benchmark.report.render import render_from_published

    root = Path(__file__).resolve().parent.parent
    reports = tmp_path / "reports"
    shutil.copytree(root / "reports", reports)
    render_from_published(root / "ablations" / f"{name}.yaml", reports)
    for path in (f"{name}.md", f"{name}/cells.jsonl", f"{name}/metrics.csv"):
        assert (reports / path).read_text() == (root / "reports" / path).read_text(), path


def test_the_letter_display_groups_levels_no_test_told_apart():
    """a < b < c by mean; only a-c differ significantly: a and b share one letter, b and c another."""
    from benchmark.report.stats import Comparison
    from benchmark.report.summary import letter_display

    def pair(a, b, significant):
        return Comparison("beta", a, b, "sse_image", 1.0, 0.5, 3, 0.01, 2.0, p_holm=0.01 if significant else 0.5)

    found = [pair("x", "y", False), pair("x", "z", True), pair("y", "z", False)]
    means = {"x": 1.0, "y": 2.0, "z": 3.0}
    assert letter_display(["x", "y", "z"], means, found, "lower") == {"x": "a", "y": "ab", "z": "b"}
    assert letter_display(["x", "y", "z"], means, found, "higher") == {"x": "b", "y": "ab", "z": "a"}
    everything = [pair("x", "y", True), pair("x", "z", True), pair("y", "z", True)]
    assert letter_display(["x", "y", "z"], means, everything, "lower") == {"x": "a", "y": "b", "z": "c"}


def test_a_latex_table_is_booktabs_with_escaped_text_and_bold_best():
    from benchmark.report.summary import latex_table

    table = pd.DataFrame({"conditioning": ["concat_input", "none"], "sse_image (nats)": ["**9.08 ± 0.55**", "10 ± 1"]})
    tex = latex_table(table, "Best in bold; 5% & more")
    assert "\\begin{tabular}{lr}" in tex and "\\toprule" in tex and "\\bottomrule" in tex
    assert "concat\\_input & \\textbf{9.08 $\\pm$ 0.55} \\\\" in tex
    assert "\\caption{Best in bold; 5\\% \\& more}" in tex
    body = tex.split("\\midrule")[1].split("\\bottomrule")[0].strip().splitlines()
    assert all(line.count(" & ") == 1 and line.endswith("\\\\") for line in body)  # two columns per row
    assert tex.count("{") == tex.count("}") + tex.count("\\{") - tex.count("\\}")


def test_the_readme_lists_the_published_results_exactly_as_the_reports_give_them():
    """No number typed twice: the README's block is written from reports/*/overview.json by bench report;
    an edited figure in it (or a report rendered without updating it) fails here."""
    from pathlib import Path

    from benchmark.report.index import README_END, README_START, results_block

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    block = README_START + readme.split(README_START, 1)[1].split(README_END, 1)[0] + README_END
    assert block == results_block(root / "reports")
    assert "literature.md" in block and "| 89.78 |" in block  # pythae's row beside the suite's


def test_the_readme_block_is_rewritten_between_its_markers_only(tmp_path):
    from benchmark.report.index import README_END, README_START, write_overview, write_readme_results

    out = tmp_path / "reports"
    write_overview(
        out / "toy",
        {
            "report": "toy.md",
            "title": "Toy?",
            "scale": "2 epochs",
            "cells": 4,
            "cell_minutes": 3,
            "converged": "",
            "published": [],
        },
    )
    (tmp_path / "README.md").write_text(
        f"# Title\n\nhand text 1.23\n\n{README_START}\nold 9.99\n{README_END}\n\nmore\n"
    )
    write_readme_results(out)
    text = (tmp_path / "README.md").read_text()
    assert text.startswith("# Title\n\nhand text 1.23\n\n") and text.endswith(f"{README_END}\n\nmore\n")
    assert "old 9.99" not in text and "- [reports/toy.md](reports/toy.md): Toy? 4 cells, 3 min of cell time." in text


def _tabular_rows(tex: str) -> tuple[str, list[int]]:
    """Parse a LaTeX table strictly (pylatexenc raises on unbalanced braces or environments) and return its
    column specification and the number of cells in each row of its tabular."""
    from pylatexenc.latexwalker import LatexEnvironmentNode, LatexMacroNode, LatexSpecialsNode, LatexWalker

    nodes, _, _ = LatexWalker(tex, tolerant_parsing=False).get_latex_nodes()
    (table,) = [n for n in nodes if isinstance(n, LatexEnvironmentNode)]
    (tabular,) = [n for n in table.nodelist if isinstance(n, LatexEnvironmentNode)]
    assert table.environmentname == "table" and tabular.environmentname == "tabular"
    spec = tabular.nodeargd.argnlist[0].nodelist[0].chars  # the {lrr} argument
    body, rows, cells = tabular.nodelist, [], 1
    macros = [n.macroname for n in body if isinstance(n, LatexMacroNode)]
    assert macros[0] == "toprule" and "midrule" in macros and macros[-1] == "bottomrule"
    for node in body:
        if isinstance(node, LatexSpecialsNode) and node.specials_chars == "&":
            cells += 1
        elif isinstance(node, LatexMacroNode) and node.macroname == "\\":
            rows.append(cells)
            cells = 1
    return spec, rows


def test_every_published_table_is_also_latex_that_parses_with_one_cell_per_column():
    """Each table of every committed report links a booktabs LaTeX file beside it; each of those parses
    strictly and has as many cells in every row as its column specification has columns."""
    import re
    from pathlib import Path

    reports = Path(__file__).resolve().parent.parent / "reports"
    checked = 0
    for report in sorted(reports.glob("*.md")):
        if report.name == "README.md" or report.name.startswith("perf"):  # speed measurements: no findings
            continue
        text = report.read_text()
        tables = len(re.findall(r"^\|---", text, flags=re.M))
        linked = re.findall(r"As LaTeX: \[[^\]]+\]\(([^)]+\.tex)\)", text)
        assert len(linked) == tables, f"{report.name}: {tables} tables, {len(linked)} LaTeX links"
        for name in linked:
            spec, rows = _tabular_rows((reports / name).read_text())
            assert rows and set(rows) == {len(spec)}, f"{name}: columns {spec}, cells per row {rows}"
            checked += 1
    assert checked > 20


def test_the_latex_check_catches_a_row_with_a_missing_cell_and_an_unbalanced_brace():
    from pylatexenc.latexwalker import LatexWalkerError

    from benchmark.report.summary import latex_table

    good = latex_table(pd.DataFrame({"a": ["x", "y"], "b": ["1", "2"]}), "caption")
    assert _tabular_rows(good) == ("lr", [2, 2, 2])
    assert _tabular_rows(good.replace("y & 2", "y 2"))[1] == [2, 2, 1]
    with pytest.raises(LatexWalkerError):
        _tabular_rows(good.replace("\\caption{caption}", "\\caption{caption"))


def test_a_figure_draws_only_what_its_axes_may_compare_and_says_what_it_left_out():
    """x = latent_dim coloured by image_size: no pixel metric is comparable across image sizes (a per-image
    sum, a per-pixel error of resampled images, an SSIM window), so none is drawn there, and the figure drawn
    instead has a row per image size; the active units are drawn; a metric equal in every cell is no panel.
    With the image size fixed, sse_image is drawn along latent_dim."""
    from benchmark.report.figure_section import _drawable, _drawable_within
    from benchmark.report.figure_section import spread_text as _spread_text

    rows = [
        {"status": "done", "seed": s, "image_size": px, "latent_dim": z, "sse_image": px * px * 0.01 + z + s}
        for px in (28, 64)
        for z in (8, 32)
        for s in (0, 1, 2)
    ]
    frame = pd.DataFrame(rows).assign(mse_pixel=lambda f: f.sse_image / f.image_size**2, ssim=0.5, cond_acc=0.1)
    frame["ssim"] += frame["latent_dim"] * 0.001
    frame["active_units"] = frame["latent_dim"] // 2 + frame["seed"]
    groups = {"latent_dim": (), "image_size": ()}
    shown = ["sse_image", "ssim", "cond_acc", "active_units"]
    drawn, note = _drawable(frame, groups, ["latent_dim", "image_size"], shown)
    assert drawn == ["active_units"]
    assert "sse_image (not comparable along image_size)" in note and "ssim (not comparable along image_size)" in note
    # within each size: the pixel metrics, not the constant cond_acc, nor active units (drawn above)
    within = _drawable_within(frame, groups, "latent_dim", "image_size", ["sse_image", "ssim", "cond_acc"])
    assert within == ["sse_image", "ssim"]
    assert _drawable_within(frame, groups, "image_size", "latent_dim", ["sse_image", "ssim", "cond_acc"]) == []
    one_size = frame[frame.image_size == 28]
    drawn, note = _drawable(one_size, groups, ["latent_dim", None], ["sse_image", "ssim", "cond_acc"])
    assert drawn == ["sse_image", "ssim"] and note == "; not drawn: cond_acc (the same in every cell: 0.1)"
    assert _spread_text(frame) == "mean and 95% t-interval over seeds"
    assert _spread_text(frame[frame.seed == 1]) == "one seed (1): the value, no interval"


def test_the_results_table_marks_a_best_only_among_comparable_rows():
    """sse_image's best in bold at each image size (a sum grows with the pixels: never one best across
    sizes); active units (no dependence on the size) one best over the whole table."""
    from benchmark.report.stats import summary_table

    rows = [
        {"status": "done", "seed": s, "image_size": px, "latent_dim": z}
        | {"sse_image": px * px * 0.01 - z * 0.01 + s * 0.1, "active_units": z / 2 + (px == 28)}
        for px in (28, 64)
        for z in (8, 32)
        for s in (0, 1, 2)
    ]
    table = summary_table(pd.DataFrame(rows), ["image_size", "latent_dim", "seed"], ["sse_image", "active_units"])
    bold = table.map(lambda v: str(v).startswith("**"))
    assert bold["sse_image"].tolist() == [False, True, False, True]  # latent 32 at each size
    assert bold["active_units"].tolist() == [False, True, False, False]  # 28 px, latent 32: 17 units


def test_a_resumed_cell_counts_the_time_of_its_earlier_runs():
    """A cell killed after 3 epochs and resumed: its provenance holds the last run's wall time only; the
    report adds the epochs the earlier run logged (epoch 4 ran in the last run, counted there)."""
    from benchmark.report.frame import _cell_seconds

    log = [{"epoch": e, "epoch_seconds": 10.0 * e} for e in range(1, 6)]
    resumed = {"resumed_from": [{"epoch": 3, "batch": 0}]}
    assert _cell_seconds(100.0, resumed, log) == pytest.approx(100.0 + 10 + 20 + 30)
    assert _cell_seconds(100.0, {}, log) == 100.0  # a cell that ran in one go: its provenance alone
    twice = {"resumed_from": [{"epoch": 1, "batch": 0}, {"epoch": 3, "batch": 7}]}
    assert _cell_seconds(100.0, twice, log) == pytest.approx(160.0)
    assert _cell_seconds(None, resumed, log) is None


def test_a_pipeline_check_is_listed_as_such_and_cannot_ask_a_question(tmp_path):
    from benchmark.errors import BenchError
    from benchmark.grid.spec import build_grid
    from benchmark.report.index import write_index

    out = tmp_path / "reports"
    for name, check in (("smoke", "CI's small cells."), ("notes", "")):
        (out / name).mkdir(parents=True)
        (out / f"{name}.md").write_text(f"# Report: {name}\n")
        (out / name / "overview.json").write_text(json.dumps({"report": f"{name}.md", "pipeline_check": check}))
    index = write_index(out).read_text()
    assert "## Pipeline checks\n" in index and "- [smoke.md](smoke.md): CI's small cells." in index
    assert "## Other reports\n\n- [notes.md](notes.md)" in index
    raw = {
        "name": "both",
        "axes": {"latent_dim": [2, 4]},
        "question": {"text": "Q?", "axis": "latent_dim", "metrics": ["sse_image"]},
        "pipeline_check": "a check",
    }
    with pytest.raises(BenchError, match=r"both.yaml: pipeline_check = 'a check': a pipeline check answers no"):
        build_grid(raw, "both.yaml")


def test_the_wall_time_counts_only_spans_with_a_cell_running():
    """Two overlapping cells (10:00-10:30, 10:20-10:40), then one resumed a day later (11:00-11:10 next day):
    40 + 10 minutes, not the 25 hours from the first start to the last end."""
    from benchmark.report.sections import _busy_minutes

    cells = pd.DataFrame(
        {
            "start": ["2026-12-01T10:20:00", "2026-12-01T10:00:00", "2026-12-02T11:00:00"],
            "end": ["2026-12-01T10:40:00", "2026-12-01T10:30:00", "2026-12-02T11:10:00"],
        }
    )
    assert _busy_minutes(cells) == pytest.approx(50.0)
    assert _busy_minutes(cells.iloc[[1]]) == pytest.approx(30.0)


def test_reference_rows_are_given_per_data_set_never_averaged_over_two(tmp_path):
    from benchmark.report.sections import _reference_section

    rows = [
        {
            "status": "done",
            "dataset": name,
            "image_px": 28,
            "n_samples": 1000,
            "fid_domain_floor": floor,
            "kid_domain_floor": 0.0,
            "classifier_accuracy": accuracy,
        }
        for name, floor, accuracy in (("fashion_mnist", 0.44, 0.91), ("mnist", 3.32, 0.99))
        for _ in range(2)
    ]
    text = _reference_section(pd.DataFrame(rows), tmp_path)
    assert "| fashion_mnist | 28 px | 0.44 |" in text and "| mnist | 28 px | 3.32 |" in text
    assert "1.88" not in text  # their mean, an instrument of neither

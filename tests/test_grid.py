import subprocess
import sys

import pytest

from benchmark.errors import BenchError
from benchmark.grid.spec import build_grid, load_grid, single_cell_grid

BASE = {"dataset": "mnist", "epochs": 1}


def grid(**spec):
    return build_grid({"name": "t", "base": BASE, **spec}, "g.yaml")


def test_product_times_seeds():
    g = grid(axes={"latent_dim": [2, 8, 32], "conditioning": ["none", "concat"]}, seeds=[0, 1])
    assert len(g.cells) == 12
    assert g.axes == ("latent_dim", "conditioning", "seed")
    assert len({c.id for c in g.cells}) == 12
    assert {c.config.seed for c in g.cells} == {0, 1}
    assert all(c.config.dataset == "mnist" and c.config.epochs == 1 for c in g.cells)


def test_zip_varies_axes_together():
    g = grid(
        axes={"backbone": ["mlp", "conv"], "image_size": [28, 64], "beta": [1.0, 4.0]},
        zip=[["backbone", "image_size"]],
    )
    pairs = {(c.config.backbone, c.config.image_size) for c in g.cells}
    assert pairs == {("mlp", 28), ("conv", 64)}
    assert len(g.cells) == 4


def test_a_zipped_axis_may_repeat_a_value_its_rows_tell_apart():
    g = grid(
        axes={"model": ["ae", "cvae", "cvae"], "conditioning": ["concat", "none", "concat"]},
        zip=[["model", "conditioning"]],
    )
    rows = [(c.config.model, c.config.conditioning) for c in g.cells]
    assert rows == [("ae", "concat"), ("cvae", "none"), ("cvae", "concat")]


def test_exclude_drops_matching_cells():
    g = grid(
        axes={"conditioning": ["none", "concat"], "latent_dim": [2, 8]},
        exclude=[{"conditioning": "none", "latent_dim": 2}],
    )
    assert len(g.cells) == 3
    assert not any(c.config.conditioning == "none" and c.config.latent_dim == 2 for c in g.cells)


def test_same_cell_in_two_grids_has_the_same_id():
    a = grid(axes={"latent_dim": [8, 16]})
    b = build_grid({"name": "other", "base": {**BASE, "latent_dim": 16}}, "h.yaml")
    assert a.cells[1].id == b.cells[0].id


def test_single_cell_from_set_assignments():
    g = single_cell_grid(["backbone=conv", "latent_dim=16", "seed=3"])
    (cell,) = g.cells
    assert (cell.config.backbone, cell.config.latent_dim, cell.config.seed) == ("conv", 16, 3)


BAD_GRIDS = [
    ({"bogus": 1}, "g.yaml: bogus = 1: unknown key; valid: name, description, base, axes"),
    ({"base": {"latnet_dim": 4}}, "g.yaml: base.latnet_dim = 4: unknown cell field; valid: dataset"),
    ({"axes": {"latent_dim": ["big"]}}, "g.yaml: axes.latent_dim = 'big': Input should be a valid integer"),
    ({"axes": {"latent_dim": [8, 0]}}, "g.yaml: axes.latent_dim = 0: Input should be greater than 0"),
    (
        {"axes": {"latent_dim": [8]}, "published": {"metrics": {"sse": 11}}},
        "g.yaml: published.metrics.sse = 11: unknown metric; known: mse_pixel, sse_image",
    ),
    (
        {"axes": {"latent_dim": [8]}, "published": {"rows": [{"where": {"latent_dim": 4}, "metrics": {"ssim": 1}}]}},
        "g.yaml: published.rows[0].where.latent_dim = 4: not a value of an axis",
    ),
    (
        {"axes": {"latent_dim": [8]}, "published": {"metrics": {"ssim": True}}},
        "g.yaml: published.metrics.ssim = True: expected a number",
    ),
    ({"axes": {"beta": [-1.0]}}, "g.yaml: axes.beta = -1.0: Input should be greater than or equal to 0"),
    (
        {"axes": {"conditioning": ["sum"]}},
        "axes.conditioning = 'sum': unknown conditioning 'sum'; valid: none, concat, concat_input, additive, film",
    ),
    (
        {"axes": {"image_size": [64]}, "base": {**BASE, "backbone": "article-conv"}},
        "g.yaml: cell image_size=64: backbone 'article-conv' does not support image_size 64; valid: 28",
    ),
    (
        {"axes": {"image_size": [48]}},
        "g.yaml: axes.image_size = 48: image size not supported; valid: 28, 32, 64, 128, 256",
    ),
    (
        {"axes": {"condition": ["text"]}},
        "g.yaml: cell condition=text: data set mnist supports condition 'label' or 'keyword' or 'image', not 'text'",
    ),
    ({"axes": {"latent_dim": []}}, "g.yaml: axes.latent_dim = []: empty axis"),
    ({"axes": {"latent_dim": [8, 8]}}, "g.yaml: axes.latent_dim = [8, 8]: duplicate values"),
    ({"seeds": [1, 1]}, "g.yaml: seeds = [1, 1]: duplicate seeds"),
    ({"seeds": []}, "g.yaml: seeds = []: List should have at least 1 item"),
    (
        {"axes": {"seed": [1, 2]}},
        "axes.seed = [1, 2]: unknown cell field (seeds go in the top-level key 'seeds')",
    ),
    (
        {"axes": {"latent_dim": [2, 4], "beta": [1.0]}, "zip": [["latent_dim", "beta"]]},
        "g.yaml: zip[0] = ['latent_dim', 'beta']: axes zipped together need lists of equal length",
    ),
    ({"zip": [["beta"]]}, "g.yaml: zip[0] = 'beta': not an axis"),
    (
        {"axes": {"latent_dim": [2, 2], "beta": [1.0, 1.0]}, "zip": [["latent_dim", "beta"]]},
        "g.yaml: zip[0] = ['latent_dim', 'beta']: duplicate rows of values",
    ),
    ({"eval": {"n_samples": 0}}, "g.yaml: eval.n_samples = 0: Input should be greater than 0"),
    ({"eval": {"fid": True}}, "g.yaml: eval.fid = True: unknown key; valid: split, recon_size, n_samples"),
    ({"axes": {"latent_dim": 8}}, "g.yaml: axes.latent_dim = 8: Input should be a valid list"),
    ({"exclude": [{"latent": 2}]}, "g.yaml: exclude[0].latent = 2: unknown cell field"),
]


@pytest.mark.parametrize(("spec", "message"), BAD_GRIDS, ids=[m.split(":")[1].strip() for _, m in BAD_GRIDS])
def test_bad_grid_names_file_key_and_value(spec, message):
    with pytest.raises(BenchError) as err:
        grid(**spec)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\naxes: [1, 2\n")
    with pytest.raises(BenchError, match=r"bad.yaml: not valid YAML"):
        load_grid(bad)
    with pytest.raises(BenchError, match="grid file not found"):
        load_grid(tmp_path / "nope.yaml")


def test_cli_bad_grid_exits_2_with_one_line_and_runs_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nbase: {dataset: mnist}\naxes: {latent_dim: [4, -2]}\n")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from benchmark.commands import main; main()",
            "run",
            "--grid",
            str(bad),
            "--results",
            str(tmp_path / "results"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {bad}: axes.latent_dim = -2: Input should be greater than 0"
    assert not (tmp_path / "results").exists()


def test_shipped_grids_are_valid():
    from pathlib import Path

    grids = sorted(Path(__file__).parents[1].glob("ablations/*.yaml"))
    assert {g.stem for g in grids} >= {"smoke"}
    for path in grids:
        g = load_grid(path)
        assert g.cells, path
        # smoke is CI's one-seed grid; binarization_draws replicates over draws, with one training seed
        if path.stem not in ("smoke", "binarization_draws"):
            assert len({c.config.seed for c in g.cells}) >= 3, path
    smoke = load_grid(grids[0].parent / "smoke.yaml")
    assert {c.config.backbone for c in smoke.cells} == {"mlp", "conv"}
    assert {c.config.conditioning for c in smoke.cells} == {"none", "concat", "additive", "film"}


def test_override_sets_a_base_field_of_every_cell(tmp_path):
    from pathlib import Path

    article = Path(__file__).parents[1] / "ablations" / "article.yaml"
    g = load_grid(article, ["epochs=3"])
    assert {c.config.epochs for c in g.cells} == {3}
    with pytest.raises(BenchError, match="conditioning is an axis of"):
        load_grid(article, ["conditioning=concat"])


def test_override_sets_an_eval_setting_of_every_cell():
    from pathlib import Path

    article = Path(__file__).parents[1] / "ablations" / "article.yaml"
    plain = load_grid(article)
    g = load_grid(article, ["eval.recon_size=1000", "eval.inception=false"])
    assert {(c.eval.recon_size, c.eval.inception) for c in g.cells} == {(1000, False)}
    assert {c.config for c in g.cells} == {c.config for c in plain.cells}
    assert not {c.id for c in g.cells} & {c.id for c in plain.cells}  # the protocol is part of the id
    with pytest.raises(BenchError, match="eval.recon_size = 0"):
        load_grid(article, ["eval.recon_size=0"])
    with pytest.raises(BenchError, match="expected a cell field"):
        load_grid(article, ["train.epochs=3"])

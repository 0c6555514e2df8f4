"""The README's "Extending" recipes, each proven end to end: a conditioning mode and a metric, each
registered in one place, run through a grid, the store and a report with nothing else edited."""

import pytest
import torch

from benchmark.grid.spec import build_grid
from benchmark.metrics.context import EvalContext
from benchmark.metrics.registry import METRIC_GROUPS, MetricGroup, MetricSpec
from benchmark.models.conditioning import CONDITIONINGS, Conditioning, ConditioningContext
from benchmark.report.frame import from_store_record
from benchmark.report.render import render_report
from benchmark.runner.grid_run import RunOptions, run_grid
from benchmark.store import CellStatus, CellStore


class Gate(Conditioning):
    """A made-up mode: an embedding of c, through a sigmoid, gates z before the decoder."""

    def __init__(self, ctx: ConditioningContext):
        super().__init__()
        self.gate = ctx.source.embedding(ctx.latent_dim)

    def latent(self, z, c):
        return z * torch.sigmoid(self.gate(c))


def mean_sample_brightness(ctx: EvalContext) -> dict:
    return {"mean_brightness": ctx.samples.double().mean().item() / 255}


@pytest.fixture
def extended(monkeypatch):
    """The one registration each recipe asks for (monkeypatch undoes it after the test)."""
    monkeypatch.setitem(CONDITIONINGS._entries, "gate", Gate)
    spec = MetricSpec("mean_brightness", "mean pixel of the generated samples", "higher", headline=True)
    monkeypatch.setitem(METRIC_GROUPS._entries, "brightness", MetricGroup(mean_sample_brightness, 1, (spec,)))


def test_a_registered_mode_and_metric_run_through_grid_store_and_report(extended, tmp_path):
    grid = build_grid(
        {
            "name": "extended",
            "base": {"dataset": "synthetic", "backbone": "mlp", "hidden": [32], "train_size": 300, "epochs": 1},
            "axes": {"conditioning": ["concat", "gate"]},
            "eval": {"recon_size": 100, "n_samples": 100, "nll_size": 20, "nll_k": 2},
        },
        "extended.yaml",
    )
    store = CellStore(tmp_path / "results")
    summary = run_grid(grid, list(grid.cells), store, RunOptions(device="cpu"))
    assert not summary.failed and len(summary.done) == 2
    gate = next(c for c in grid.cells if c.config.conditioning == "gate")
    assert store.status(gate.id) == CellStatus.DONE
    metrics = store.read(gate.id, "metrics.json")
    assert 0 < metrics["mean_brightness"] < 1
    assert metrics["protocol"]["groups"]["brightness"] == 1
    report = render_report(store, from_store_record(store, "extended"), tmp_path / "reports").read_text()
    assert "| gate |" in report and "mean_brightness" in report
    assert "- `mean_brightness`: mean pixel of the generated samples" in report


def test_a_group_returning_a_metric_without_a_spec_is_refused(monkeypatch):
    from benchmark.config import CellConfig
    from benchmark.data import load_dataset
    from benchmark.metrics.evaluate import evaluate_cell
    from benchmark.metrics.protocol import EvalConfig
    from benchmark.training import train_cell

    unnamed = MetricGroup(lambda ctx: {"mystery": 1.0}, 1, ())
    monkeypatch.setitem(METRIC_GROUPS._entries, "unnamed", unnamed)
    data = load_dataset("synthetic", 28)
    config = CellConfig(dataset="synthetic", backbone="mlp", hidden=(16,), train_size=200, epochs=1)
    trained = train_cell(config, device="cpu", bundle=data.with_train(data.train.seeded_subset(200, 0)))
    with pytest.raises(RuntimeError, match=r"metric group 'unnamed' returned \['mystery'\] without a MetricSpec"):
        evaluate_cell(trained, EvalConfig(recon_size=50, n_samples=50, nll_size=10, nll_k=2), groups=["unnamed"])


def test_every_metric_a_cell_stores_has_a_spec(tmp_path):
    from benchmark.metrics.registry import metric_specs

    grid = build_grid(
        {
            "name": "specs",
            "base": {"dataset": "synthetic", "backbone": "mlp", "hidden": [16], "train_size": 200, "epochs": 1},
            "eval": {"recon_size": 50, "n_samples": 50, "nll_size": 10, "nll_k": 2},
        },
        "specs.yaml",
    )
    store = CellStore(tmp_path)
    run_grid(grid, list(grid.cells), store, RunOptions(device="cpu"))
    stored = set(store.read(grid.cells[0].id, "metrics.json")) - {"protocol", "eval_seconds"}
    assert stored and stored <= set(metric_specs())


def load_tiles(root, image_size):
    """A made-up four-class data set: the synthetic set's first four shapes (not ten classes)."""
    from dataclasses import replace

    from benchmark.data import load_dataset

    bundle = load_dataset("synthetic", image_size)

    def first_four(split):
        return split.subset(torch.nonzero(split.labels < 4).flatten())

    return replace(
        bundle,
        name="tiles",
        class_names=bundle.class_names[:4],
        train=first_four(bundle.train),
        test=first_four(bundle.test),
        source={"derived": "synthetic classes 0-3"},
    )


TILES_KEYWORDS = {"hbar": ["flat"], "vbar": ["upright"], "diagonal": ["slash"], "antidiagonal": ["backslash"]}


@pytest.fixture
def tiles(monkeypatch):
    """A data set and a report section, each its one registration (monkeypatch undoes them)."""
    from benchmark.conditions.keywords import keyword_table
    from benchmark.data.datasets import LABELLED, DatasetEntry
    from benchmark.registry import DATASETS
    from benchmark.report.context import SECTIONS

    entry = DatasetEntry(
        load_tiles,
        channels=1,
        conditions=LABELLED,
        classes=4,
        folder="tiles",
        checksums=lambda root, split: "OK" if (root / "tiles" / f"{split}.ok").exists() else f"{split}.ok: missing",
        keywords=TILES_KEYWORDS,
    )
    monkeypatch.setitem(DATASETS._entries, "tiles", entry)
    monkeypatch.setitem(SECTIONS._entries, "tile count", lambda r: f"## Tiles\n\n{len(r.frame)} cells of tiles.\n")
    yield
    keyword_table.cache_clear()  # its cache holds the table of the registration undone


def test_a_registered_data_set_and_report_section_run_through_grid_store_report_and_tools(tiles, tmp_path):
    from benchmark.conditions.keywords import keyword_table
    from benchmark.data.check import check_data_dir
    from benchmark.models.cost import parameter_count_of

    grid = build_grid(
        {
            "name": "tiles",
            "base": {"dataset": "tiles", "backbone": "mlp", "hidden": [32], "train_size": 200, "epochs": 1},
            "axes": {"conditioning": ["concat", "additive"]},
            "match_params": True,
            "eval": {"recon_size": 50, "n_samples": 50, "nll_size": 10, "nll_k": 2},
        },
        "tiles.yaml",
    )
    store = CellStore(tmp_path / "results")
    summary = run_grid(grid, list(grid.cells), store, RunOptions(device="cpu"))
    assert not summary.failed and len(summary.done) == 2
    for cell in grid.cells:
        metrics = store.read(cell.id, "metrics.json")
        # the count matching works from is the trained model's: four classes, from the registration
        assert metrics["parameters"] == parameter_count_of(cell.config)
        assert "no domain classifier ships for tiles" in metrics["protocol"]["unavailable"]["fid_domain"]
    report = render_report(store, from_store_record(store, "tiles"), tmp_path / "reports").read_text()
    assert "## Tiles\n\n2 cells of tiles." in report
    assert keyword_table("tiles").match("a flat tile") == 0 and keyword_table("tiles").match("backslashes") == 3
    (tmp_path / "data" / "tiles").mkdir(parents=True)
    (tmp_path / "data" / "tiles" / "train.ok").touch()
    rows = {row.split: row for row in check_data_dir(tmp_path / "data")}
    assert rows["train"].dataset == "tiles" and rows["train"].checksum == "OK" and rows["train"].images > 0
    assert rows["test"].checksum == "test.ok: missing"

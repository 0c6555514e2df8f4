"""`bench run --track`: each cell's run read back by the trackers' own readers."""

from pathlib import Path

import pytest

from benchmark.errors import BenchError
from benchmark.grid.spec import build_grid
from benchmark.metrics.registry import scalar_value
from benchmark.runner import tracking
from benchmark.runner.grid_run import RunOptions, run_grid
from benchmark.runner.tracking import TrackingOptions, check_tracking
from benchmark.store import CellStore
from tests.test_runner import TINY_EVAL

BASE = {"dataset": "synthetic", "backbone": "mlp", "hidden": [32], "train_size": 400, "val_size": 200, "epochs": 3}


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """One grid of two cells, run with both trackers through the processes executor (they log from the
    workers)."""
    folder = tmp_path_factory.mktemp("tracked")
    grid = build_grid(
        {"name": "tracked", "base": BASE, "axes": {"latent_dim": [2, 3]}, "seeds": [0], "eval": TINY_EVAL}, "t.yaml"
    )
    options = RunOptions(
        device="cpu", workers=2, tracking=TrackingOptions(("tensorboard", "mlflow"), str(folder / "tracking"))
    )
    store = CellStore(folder / "results")
    assert not run_grid(grid, list(grid.cells), store, options).failed
    return grid, store, folder / "tracking"


def test_tensorboard_holds_each_cells_curves_hyperparameters_and_samples(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    grid, store, folder = tracked
    for cell in grid.cells:
        (run,) = (folder / "tensorboard" / "tracked").glob(f"* {cell.id}")
        events = EventAccumulator(str(run), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
        events.Reload()
        log = store.read(cell.id, "log.json")
        losses = [(e.step, e.value) for e in events.Scalars("epoch/loss")]
        assert losses == [(r["epoch"], pytest.approx(r["loss"], rel=1e-6)) for r in log]  # stored as float32
        assert [e.step for e in events.Scalars("epoch/val_loss")] == [1, 2, 3]
        (image,) = events.Images("samples")
        assert image.width > 0 and image.height > 0
        content = events.PluginTagToContent("hparams")
        start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
        hparams = start.session_start_info.hparams
        assert hparams["latent_dim"].number_value == cell.config.latent_dim
        assert hparams["axis.latent_dim"].string_value == str(cell.config.latent_dim)
        assert hparams["dataset"].string_value == "synthetic"
        metrics = store.read(cell.id, "metrics.json")
        final = {t: events.Scalars(t)[-1].value for t in events.Tags()["scalars"] if t.startswith("metric/")}
        assert final["metric/sse_image"] == pytest.approx(scalar_value(metrics["sse_image"]), rel=1e-6)


def test_mlflow_holds_one_run_per_cell_grouped_by_grid(tracked, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow reads its file store only when told to

    grid, store, folder = tracked
    client = MlflowClient(tracking_uri=(folder / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("tracked")
    runs = {r.data.tags["cell"]: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {c.id for c in grid.cells}
    for cell in grid.cells:
        run = runs[cell.id]
        assert run.info.status == "FINISHED"
        assert run.data.params["latent_dim"] == str(cell.config.latent_dim)
        assert run.data.params["eval.nll_k"] == str(TINY_EVAL["nll_k"])
        assert run.data.tags["axis.latent_dim"] == str(cell.config.latent_dim)
        assert run.info.run_name == f"latent_dim={cell.config.latent_dim} seed=0"
        history = client.get_metric_history(run.info.run_id, "epoch.loss")
        log = store.read(cell.id, "log.json")
        assert [(m.step, m.value) for m in history] == [(r["epoch"], r["loss"]) for r in log]
        assert run.data.metrics["sse_image"] == scalar_value(store.read(cell.id, "metrics.json")["sse_image"])
        assert "samples.png" in [a.path for a in client.list_artifacts(run.info.run_id)]


def test_a_tracker_that_is_not_installed_is_refused_before_any_cell(tmp_path, monkeypatch):
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BenchError, match="--track mlflow: the mlflow package is not installed"):
        check_tracking(TrackingOptions(("mlflow",), str(tmp_path / "t")))
    assert not (tmp_path / "t").exists()


def test_the_tracking_folder_must_be_writable(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(BenchError, match="--track-dir .*file/t: cannot write there"):
        check_tracking(TrackingOptions(("tensorboard",), str(Path(tmp_path / "file" / "t"))))


def test_a_tracker_that_fails_mid_run_is_a_warning_and_the_cell_is_stored(tmp_path, monkeypatch):
    def broken(self, record):
        raise OSError("disk full")

    monkeypatch.setattr(tracking.TensorBoardRun, "epoch", broken)
    grid = build_grid({"name": "broken", "base": BASE, "axes": {}, "seeds": [0], "eval": TINY_EVAL}, "b.yaml")
    options = RunOptions(device="cpu", tracking=TrackingOptions(("tensorboard",), str(tmp_path / "tracking")))
    with pytest.warns(UserWarning, match="tracker TensorBoardRun: OSError: disk full"):
        summary = run_grid(grid, list(grid.cells), CellStore(tmp_path / "results"), options)
    assert summary.done == [grid.cells[0].id] and not summary.failed

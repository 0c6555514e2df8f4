"""Experiment tracking (`bench run --track tensorboard --track mlflow`): each cell is one run of the tracker,
grouped by grid, logged from where the cell trains (so the processes and Ray executors log live).

A run holds the cell's resolved config as hyperparameters, the grid's axes as tags, every epoch's training
and validation terms as curves (step = epoch), the final scalar metrics, and the sample grid as an image.
The trackers' own writers do the work: torch.utils.tensorboard's SummaryWriter (one log folder per cell under
<folder>/tensorboard/<grid>/) and MLflow's client (a file store at <folder>/mlruns unless a tracking URI is
given; experiment = grid, run name = the cell's axis values).
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.errors import BenchError
from benchmark.registry import Registry

TRACKERS: Registry[type] = Registry("tracker")
PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow"}  # tracker -> the module it needs
INSTALL_HINT = "pip install 'cvae-bench[tracking]' (or uv sync --extra tracking)"


@dataclass(frozen=True)
class TrackingOptions:
    trackers: tuple[str, ...] = ()
    folder: str = "tracking"  # where local logs go
    uri: str | None = None  # MLflow tracking URI; None = a file store under `folder`
    grid: str = ""  # set by run_grid

    def open(self, cell) -> CellTracking:
        """The cell's runs; a tracker that cannot start one is a warning, never the cell's failure."""
        runs = []
        for name in self.trackers:
            try:
                runs.append(TRACKERS[name](self, cell))
            except Exception as err:  # noqa: BLE001 - tracking is a view of the run, not part of it
                _warn(name, err)
        return CellTracking(runs)


def prepare_tracking(options: TrackingOptions) -> None:
    """In the run's own process, before any cell: what the cells' runs share (MLflow's experiment, created
    once here so that workers starting at once do not each create one)."""
    if "mlflow" in options.trackers:
        MlflowRun.experiment(options)


def _warn(tracker: str, err: Exception) -> None:
    warnings.warn(f"tracker {tracker}: {type(err).__name__}: {err}", stacklevel=3)


def check_tracking(options: TrackingOptions) -> None:
    """Before any cell: known trackers, installed, and a folder this process can write."""
    for name in options.trackers:
        TRACKERS[name]  # an unknown name is one line naming the known ones
        if importlib.util.find_spec(PACKAGES[name]) is None:
            raise BenchError(f"--track {name}: the {PACKAGES[name]} package is not installed; {INSTALL_HINT}")
    if not options.trackers:
        return
    folder = Path(options.folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".bench-write-check"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise BenchError(f"--track-dir {folder}: cannot write there ({err.strerror or err})") from None


@dataclass
class CellTracking:
    runs: list = field(default_factory=list)

    def epoch(self, record: dict) -> None:
        for run in list(self.runs):
            self._guarded(run, lambda run: run.epoch(record))

    def end(self, result) -> None:
        """Log a done cell's metrics and samples (`result`; None for a failed cell) and close its runs."""
        for run in list(self.runs):
            if result is not None:
                self._guarded(run, lambda run: run.finish(final_scalars(result.metrics), result.images.get("samples")))
            self._guarded(run, lambda run: run.close())

    def _guarded(self, run, call) -> None:
        """A tracker's trouble is a warning and ends its run's logging, never the cell."""
        try:
            call(run)
        except Exception as err:  # noqa: BLE001 - tracking is a view of the run, not part of it
            _warn(type(run).__name__, err)
            self.runs.remove(run)


def hyperparameters(cell) -> dict[str, str | int | float | bool]:
    """The resolved config and eval settings as flat scalars (lists and None as text)."""
    flat = {}
    for prefix, values in (("", cell.config.model_dump(mode="json")), ("eval.", cell.eval.model_dump(mode="json"))):
        for key, value in values.items():
            keep = isinstance(value, (int, float, bool, str))
            flat[prefix + key] = value if keep else json.dumps(value)
    return flat


def epoch_scalars(record: dict) -> dict[str, float]:
    return {k: float(v) for k, v in record.items() if k != "epoch" and _is_number(v)}


def final_scalars(metrics: dict) -> dict[str, float]:
    from benchmark.metrics.registry import scalar_value

    values = {name: scalar_value(value) for name, value in metrics.items()}
    return {name: v for name, v in values.items() if v is not None and _is_number(v)}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _run_name(cell) -> str:
    from benchmark.runner.reference import label

    return label(cell) or cell.id


@TRACKERS.register("tensorboard")
class TensorBoardRun:
    def __init__(self, options: TrackingOptions, cell):
        from torch.utils.tensorboard import SummaryWriter

        self.cell = cell
        self.folder = Path(options.folder) / "tensorboard" / options.grid / f"{_run_name(cell)} {cell.id}"
        self.writer = SummaryWriter(str(self.folder))
        self.writer.add_text("cell", cell.id)

    def epoch(self, record: dict) -> None:
        for name, value in epoch_scalars(record).items():
            self.writer.add_scalar(f"epoch/{name}", value, record["epoch"])
        self.writer.flush()

    def finish(self, scalars: dict[str, float], samples: bytes | None) -> None:
        tags = {f"axis.{k}": str(v) for k, v in self.cell.axis_values}
        self.writer.add_hparams(
            {**hyperparameters(self.cell), **tags}, {f"metric/{k}": v for k, v in scalars.items()}, run_name="."
        )
        if samples is not None:
            self.writer.add_image("samples", _png_array(samples), dataformats="HWC")

    def close(self) -> None:
        self.writer.close()


@TRACKERS.register("mlflow")
class MlflowRun:
    def __init__(self, options: TrackingOptions, cell):
        self.client, experiment_id = MlflowRun.experiment(options)
        unfinished = self.client.search_runs(
            [experiment_id], f"tags.cell = '{cell.id}' and attributes.status = 'RUNNING'", max_results=1
        )
        if unfinished:  # a run of this cell stopped part way (preempted): it goes on in the same run
            self.run_id = unfinished[0].info.run_id
            return
        tags = {"grid": options.grid, "cell": cell.id, **{f"axis.{k}": str(v) for k, v in cell.axis_values}}
        self.run_id = self.client.create_run(experiment_id, tags=tags, run_name=_run_name(cell)).info.run_id
        for key, value in hyperparameters(cell).items():
            self.client.log_param(self.run_id, key, value)

    @staticmethod
    def experiment(options: TrackingOptions):
        """The client and the grid's experiment id (created if it is not there yet)."""
        from mlflow.tracking import MlflowClient

        uri = options.uri
        if uri is None:  # MLflow keeps its file store in maintenance mode, but still writes and reads it
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = (Path(options.folder) / "mlruns").resolve().as_uri()
        client = MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(options.grid)
        return client, experiment.experiment_id if experiment else _create_experiment(client, options.grid)

    def epoch(self, record: dict) -> None:
        for name, value in epoch_scalars(record).items():
            self.client.log_metric(self.run_id, f"epoch.{name}", value, step=record["epoch"])

    def finish(self, scalars: dict[str, float], samples: bytes | None) -> None:
        for name, value in scalars.items():
            self.client.log_metric(self.run_id, name, value)
        if samples is not None:
            self.client.log_image(self.run_id, _png_array(samples), artifact_file="samples.png")

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


def _create_experiment(client, name: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        return client.create_experiment(name)
    except MlflowException:  # another worker created it first
        return client.get_experiment_by_name(name).experiment_id


def _png_array(png: bytes):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))

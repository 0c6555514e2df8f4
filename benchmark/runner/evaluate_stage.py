"""`bench evaluate`: measure done cells again from their checkpoints under the current protocol, no training.

A new metric or a corrected definition reaches every trained cell this way. The cell's old metrics stay
until its new ones are complete (one atomic write); with `--metrics`, only the groups computing those
metrics run and their values replace the old ones, the rest are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from benchmark.errors import BenchError
from benchmark.grid import Cell
from benchmark.metrics.evaluate import evaluate_cell
from benchmark.metrics.registry import METRIC_GROUPS, group_of, group_versions, metric_specs, protocol_version
from benchmark.store import CellStatus, CellStore
from benchmark.store.cells import CHECKPOINT
from benchmark.training.trainer import load_stored_cell


def current_version(cell: Cell) -> str:
    return protocol_version(cell.eval.model_dump(mode="json"), group_versions())


def is_stale(store: CellStore, cell: Cell, metrics: dict | None = None) -> bool:
    """A done cell measured under another protocol (other settings, or an older metric group); `metrics`: its
    metrics.json where the caller has read it already (a done cell's)."""
    if metrics is None:
        if store.status(cell.id) != CellStatus.DONE:
            return False
        metrics = store.read(cell.id, "metrics.json")
    return metrics["protocol"].get("version") != current_version(cell)


def groups_for(metric_names: list[str] | None) -> list[str] | None:
    """The metric groups that compute the named metrics (None: every group)."""
    if not metric_names:
        return None
    specs = metric_specs()
    unknown = [m for m in metric_names if m not in specs and m not in METRIC_GROUPS]
    if unknown:
        raise BenchError(f"--metrics {','.join(unknown)}: unknown metric; known: {', '.join(specs)}")
    return sorted({m if m in METRIC_GROUPS else group_of(m) for m in metric_names}, key=METRIC_GROUPS.names().index)


def merged(old: dict, new: dict, groups: list[str], eval_settings: dict) -> dict:
    """Old metrics with the re-run groups' values and versions replaced, and the protocol version recomputed."""
    versions = {**old.get("protocol", {}).get("groups", {}), **new["protocol"]["groups"]}
    definitions = {**old.get("protocol", {}).get("definitions", {}), **new["protocol"]["definitions"]}
    fresh = {name for group in groups for name in METRIC_GROUPS[group].names}
    old_unavailable = old.get("protocol", {}).get("unavailable", {})
    unavailable = {k: v for k, v in old_unavailable.items() if k not in fresh} | new["protocol"].get("unavailable", {})
    protocol = {**old.get("protocol", {}), **new["protocol"], "groups": versions, "definitions": definitions}
    protocol["unavailable"] = unavailable
    protocol["version"] = protocol_version(eval_settings, versions)
    timing = {**old.get("eval_seconds", {}), **new["eval_seconds"]}
    kept = {k: v for k, v in old.items() if k not in fresh and k not in ("protocol", "eval_seconds")}
    return {**kept, **{k: v for k, v in new.items() if k in fresh}, "protocol": protocol, "eval_seconds": timing}


@dataclass
class EvaluateSummary:
    measured: list[str] = field(default_factory=list)
    not_trained: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    no_checkpoint: list[str] = field(default_factory=list)  # done without a model.pt (restored): nothing to load
    damaged: dict[str, str] = field(default_factory=dict)  # id -> what is damaged; `bench run` redoes them


def evaluate_cells(
    cells: list[Cell], store: CellStore, device: torch.device, data_dir=None, metric_names=None, on_cell=None
) -> EvaluateSummary:
    groups = groups_for(metric_names)
    summary = EvaluateSummary()
    for cell in cells:
        status = store.status(cell.id)
        if status == CellStatus.DAMAGED:
            summary.damaged[cell.id] = str(store.damage(cell.id))
            continue
        if status != CellStatus.DONE:
            summary.not_trained.append(cell.id)
            continue
        if not (store.cell_dir(cell.id) / CHECKPOINT).exists():
            summary.no_checkpoint.append(cell.id)
            continue
        with store.claim(cell.id) as mine:
            if not mine:
                summary.busy.append(cell.id)
                continue
            trained = load_stored_cell(store, cell.id, data_dir, device)
            evaluation = evaluate_cell(trained, cell.eval, data_dir, groups)
            metrics = evaluation.metrics
            if groups:
                metrics = merged(
                    store.read(cell.id, "metrics.json"), metrics, groups, cell.eval.model_dump(mode="json")
                )
            store.remeasure(cell.id, metrics, evaluation.images)
        summary.measured.append(cell.id)
        if on_cell:
            on_cell(cell)
    return summary

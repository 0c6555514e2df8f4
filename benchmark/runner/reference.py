"""Compare a grid's stored metrics with committed reference values, or two stores with each other,
within stated tolerances.

The reference file lists, per cell, its id and metric values, and beside them the
tolerance of each metric: |got - want| <= abs + rel * |want|.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmark.errors import BenchError
from benchmark.fileio import read_json, write_json
from benchmark.grid import Grid
from benchmark.metrics.registry import metric_specs
from benchmark.store import CellStatus, CellStore


def tolerances() -> dict[str, dict[str, float]]:
    """Each metric's `bench reproduce` tolerance, from its spec (metrics/groups/reconstruction.py says how
    it was measured)."""
    return {
        name: {"rel": spec.tolerance[0], "abs": spec.tolerance[1]}
        for name, spec in metric_specs().items()
        if spec.tolerance
    }


def label(cell) -> str:
    return axes_label(dict(cell.axis_values))


def axes_label(axes: dict) -> str:
    """A cell named by its axis values: 'conditioning=concat seed=0'."""
    return " ".join(f"{k}={v}" for k, v in axes.items())


def write_reference(grid: Grid, store: CellStore, path: Path) -> None:
    cells = {}
    for cell in grid.cells:
        status = store.status(cell.id)
        if status != CellStatus.DONE:
            raise BenchError(f"cell {cell.id} ({label(cell)}) is {status.value}, not done; run the grid first")
        metrics = store.read(cell.id, "metrics.json")
        cells[label(cell)] = {"id": cell.id, "metrics": {m: metrics.get(m) for m in tolerances()}}
    write_json(path, {"grid": grid.name, "tolerances": tolerances(), "cells": cells})


def _read_reference(path: Path) -> dict:
    if not path.is_file():
        raise BenchError(f"--reference {path}: not a file")
    try:
        reference = read_json(path)
    except (UnicodeDecodeError, ValueError) as err:
        raise BenchError(f"{path}: not a reference file (not JSON: {err})") from None
    if not isinstance(reference, dict) or not isinstance(reference.get("cells"), dict):
        raise BenchError(f"{path}: not a reference file (no 'cells' mapping; write one with --write)")
    if not isinstance(reference.get("tolerances"), dict):
        raise BenchError(f"{path}: not a reference file (no 'tolerances' mapping; write one with --write)")
    for name, entry in reference["cells"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("metrics"), dict) or "id" not in entry:
            raise BenchError(f"{path}: cells.{name}: expected a mapping with 'id' and 'metrics'")
        for metric in entry["metrics"]:
            if not isinstance(reference["tolerances"].get(metric), dict):
                raise BenchError(f"{path}: cells.{name}.metrics.{metric}: no tolerance for it under 'tolerances'")
    return reference


def compare_with_reference(grid: Grid, store: CellStore, path: Path) -> list[str]:
    """Every difference beyond tolerance, as one line each; empty when the grid reproduces."""
    if not path.exists():
        raise BenchError(f"{path}: reference file not found; create it with --write")
    reference = _read_reference(path)
    problems = []
    for cell in grid.cells:
        name = label(cell)
        want = reference["cells"].get(name)
        if want is None:
            problems.append(f"{name}: not in the reference")
            continue
        if want["id"] != cell.id:
            problems.append(f"{name}: cell config changed (id {cell.id}, reference {want['id']})")
            continue
        if store.status(cell.id) != CellStatus.DONE:
            problems.append(f"{name}: cell {cell.id} is {store.status(cell.id).value}")
            continue
        got = store.read(cell.id, "metrics.json")
        for metric, expected in want["metrics"].items():
            if expected is None or got.get(metric) is None:
                if (expected is None) != (got.get(metric) is None):
                    problems.append(f"{name}: {metric} = {got.get(metric)}, reference {expected}")
                continue
            diff, allowed = difference(got[metric], expected, reference["tolerances"][metric])
            if abs(diff) > allowed or (diff != diff and not (got[metric] != got[metric] and expected != expected)):
                problems.append(
                    f"{name}: {metric} = {got[metric]:.6g}, reference {expected:.6g} "
                    f"(difference {diff:+.4g}, allowed +-{allowed:.4g})"
                )
    return problems


def difference(got: float, want: float, tolerance: dict[str, float]) -> tuple[float, float]:
    """got - want, and the difference the tolerance allows: abs + rel * |want|."""
    return got - want, tolerance["abs"] + tolerance["rel"] * abs(want)


@dataclass(frozen=True)
class StoreDifference:
    """One metric of one cell in two stores; `allowed` is None for a metric without a tolerance."""

    cell: str
    metric: str
    a: float | None
    b: float | None
    allowed: float | None

    @property
    def difference(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def beyond(self) -> bool:
        """Past the tolerance, measured in one store only, or not a number in one of them (a diverged run)."""
        if (self.a is None) != (self.b is None) or (self.a != self.a) != (self.b != self.b):
            return True
        difference = self.difference
        return self.allowed is not None and difference is not None and abs(difference) > self.allowed


def check_metric_names(names: list[str]) -> list[str]:
    """The metrics asked for by name (--metric), each registered; by default every metric that has a
    reproduction tolerance."""
    specs, known = metric_specs(), tolerances()
    for name in names:
        if name not in specs:
            raise BenchError(f"--metric {name}: unknown metric; known: {', '.join(specs)}")
    return list(names) or list(known)


@dataclass
class StoreComparison:
    rows: list[StoreDifference]
    compared: list[str]  # the cells done in both
    missing: list[str]  # cells done in A that B lacks: a failure, like a value beyond tolerance
    notes: list[str]  # cells not done in A, evaluation protocols that differ


def compare_stores(cells: list[tuple[str, str]], a: CellStore, b: CellStore, metrics: list[str]) -> StoreComparison:
    """The cells (label, id) done in both stores, metric by metric: B - A against each metric's `bench
    reproduce` tolerance (relative to A, the run compared against)."""
    result, tol, specs = StoreComparison([], [], [], []), tolerances(), metric_specs()
    for name, cell_id in cells:
        states = a.status(cell_id), b.status(cell_id)
        if states[0] != CellStatus.DONE:
            result.notes.append(f"{name}: {states[0].value} in A; not compared")
            continue
        if states[1] != CellStatus.DONE:
            result.missing.append(f"{name}: done in A, {states[1].value} in B")
            continue
        result.compared.append(name)
        got_a, got_b = a.read(cell_id, "metrics.json"), b.read(cell_id, "metrics.json")
        versions = [m.get("protocol", {}).get("version") for m in (got_a, got_b)]
        if versions[0] != versions[1]:
            result.notes.append(f"{name}: measured under evaluation protocols {versions[0]} (A) and {versions[1]} (B)")
        for metric in metrics:
            value_a, value_b = specs[metric].value(got_a), specs[metric].value(got_b)
            if value_a is None and value_b is None:
                continue
            allowed = None
            if metric in tol and value_a is not None and value_b is not None:
                allowed = difference(value_b, value_a, tol[metric])[1]
            result.rows.append(StoreDifference(name, metric, value_a, value_b, allowed))
    return result

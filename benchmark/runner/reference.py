"""Compare a grid's stored metrics with committed reference values, within stated tolerances.

The reference file lists, per cell, its id and metric values, and beside them the
tolerance of each metric: |got - want| <= abs + rel * |want|.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.errors import BenchError
from benchmark.fileio import read_json, write_json
from benchmark.grid import Grid
from benchmark.metrics.registry import metric_specs
from benchmark.store import CellStatus, CellStore


def tolerances() -> dict[str, dict[str, float]]:
    """Each metric's `bench reproduce` tolerance, from its spec (metrics/evaluate.py says how it was measured)."""
    return {
        name: {"rel": spec.tolerance[0], "abs": spec.tolerance[1]}
        for name, spec in metric_specs().items()
        if spec.tolerance
    }


def label(cell) -> str:
    return " ".join(f"{k}={v}" for k, v in cell.axis_values)


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
            tol = reference["tolerances"][metric]
            allowed = tol["abs"] + tol["rel"] * abs(expected)
            diff = got[metric] - expected
            if abs(diff) > allowed:
                problems.append(
                    f"{name}: {metric} = {got[metric]:.6g}, reference {expected:.6g} "
                    f"(difference {diff:+.4g}, allowed +-{allowed:.4g})"
                )
    return problems

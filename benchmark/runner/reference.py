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
        metrics = store.read(cell.id, "metrics.json")
        if metrics is None:
            raise BenchError(f"cell {cell.id} ({label(cell)}) is not done; run the grid first")
        cells[label(cell)] = {"id": cell.id, "metrics": {m: metrics.get(m) for m in tolerances()}}
    write_json(path, {"grid": grid.name, "tolerances": tolerances(), "cells": cells})


def compare_with_reference(grid: Grid, store: CellStore, path: Path) -> list[str]:
    """Every difference beyond tolerance, as one line each; empty when the grid reproduces."""
    if not path.exists():
        raise BenchError(f"{path}: reference file not found; create it with --write")
    reference = read_json(path)
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

"""Compare a grid's stored metrics with committed reference values, within stated tolerances.

The reference file lists, per cell, its id and metric values, and beside them the
tolerance of each metric: |got - want| <= abs + rel * |want|.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.errors import BenchError
from benchmark.fileio import read_json, write_json
from benchmark.grid import Grid
from benchmark.store import CellStatus, CellStore

# CPU results repeat bit for bit on one machine; other CPUs take other float paths (vectorised kernels
# differ by instruction set). Measured on the smoke grid, largest difference over its 8 cells between an
# AVX2 machine, an AVX-512 machine (the previous reference) and PyTorch's scalar kernels
# (ATEN_CPU_CAPABILITY=default), one or two threads: sse_image / mse_pixel 2.2e-4 relative, ssim 7.4e-4,
# fid_domain 4.1e-4 relative (0.17), kid_domain 0.019, cond_acc 0.002, nll_iw 1.6e-4 relative, active_units 0.
# Each tolerance is about 10x its measured spread; tests/test_reference.py shows a planted training bug
# (beta off by 20%) exceeds them.
TOLERANCES = {
    "sse_image": {"rel": 0.002, "abs": 0.0},
    "mse_pixel": {"rel": 0.002, "abs": 0.0},
    "ssim": {"rel": 0.0, "abs": 0.007},
    "fid_domain": {"rel": 0.004, "abs": 0.0},
    "cond_acc": {"rel": 0.0, "abs": 0.02},
    "nll_iw": {"rel": 0.002, "abs": 0.0},
    "active_units": {"rel": 0.0, "abs": 1.0},
}


def label(cell) -> str:
    return " ".join(f"{k}={v}" for k, v in cell.axis_values)


def write_reference(grid: Grid, store: CellStore, path: Path) -> None:
    cells = {}
    for cell in grid.cells:
        metrics = store.read(cell.id, "metrics.json")
        if metrics is None:
            raise BenchError(f"cell {cell.id} ({label(cell)}) is not done; run the grid first")
        cells[label(cell)] = {"id": cell.id, "metrics": {m: metrics[m] for m in TOLERANCES}}
    write_json(path, {"grid": grid.name, "tolerances": TOLERANCES, "cells": cells})


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
            tol = reference["tolerances"][metric]
            allowed = tol["abs"] + tol["rel"] * abs(expected)
            diff = got[metric] - expected
            if abs(diff) > allowed:
                problems.append(
                    f"{name}: {metric} = {got[metric]:.6g}, reference {expected:.6g} "
                    f"(difference {diff:+.4g}, allowed +-{allowed:.4g})"
                )
    return problems

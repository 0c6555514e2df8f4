"""Does a grid's answer depend on its scale? The ranking of each axis's levels in this run against a
shorter (or longer) run of some of the same cells, kept in another store (`bench report --scale-check`)."""

from __future__ import annotations

import pandas as pd
from scipy import stats

from benchmark.metrics.registry import metric_specs


def level_ranking(frame: pd.DataFrame, axis: str, metric: str) -> list:
    """The axis's levels, best mean first."""
    means = frame.groupby(axis, sort=False)[metric].mean().dropna()
    return list(means.sort_values(ascending=metric_specs()[metric].better == "lower").index)


def ranking_agreement(here: pd.DataFrame, other: pd.DataFrame, axes: list[str], metrics: list[str]) -> pd.DataFrame:
    """Per (axis, metric), on the cells both runs hold (same axis values, seed included): each run's
    ranking of the axis's levels, Kendall's tau between them and whether the best level is the same."""
    keys = [a for a in axes if a in other]
    shared = here[here["status"] == "done"].merge(
        other[other["status"] == "done"], on=keys, suffixes=("", "_other"), validate="one_to_one"
    )
    rows = []
    for axis in axes:
        if axis == "seed" or shared[axis].nunique() < 2:
            continue
        for metric in metrics:
            mine = level_ranking(shared, axis, metric)
            theirs = level_ranking(shared.assign(**{metric: shared[f"{metric}_other"]}), axis, metric)
            if len(mine) < 2 or set(mine) != set(theirs):
                continue
            tau = stats.kendalltau([mine.index(v) for v in mine], [theirs.index(v) for v in mine]).statistic
            rows.append(
                {
                    "axis": axis,
                    "metric": metric,
                    "ranking here": " > ".join(map(str, mine)),
                    "ranking there": " > ".join(map(str, theirs)),
                    "kendall_tau": round(float(tau), 2),
                    "same best": mine[0] == theirs[0],
                    "cells": len(shared),
                }
            )
    return pd.DataFrame(rows)

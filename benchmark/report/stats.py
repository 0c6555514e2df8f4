"""Intervals and paired comparisons over seeds."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.metrics.registry import metric_specs


def t_interval(values) -> tuple[float, float, int]:
    """(mean, half-width of the 95% t-interval, n); the half-width is nan when n < 2."""
    values = np.asarray([v for v in values if v == v], dtype=float)
    n = len(values)
    if n == 0:
        return math.nan, math.nan, 0
    if n < 2:
        return float(values.mean()), math.nan, 1
    half = stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n)
    return float(values.mean()), float(half), n


def t_errorbar(values) -> tuple[float, float]:
    """For seaborn's errorbar=: the same 95% t-interval that the tables show."""
    mean, half, _ = t_interval(values)
    half = 0.0 if math.isnan(half) else half
    return mean - half, mean + half


def fmt(value: float) -> str:
    if value != value:
        return "-"
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4g}"
    return f"{value:.3e}"


def summary_table(frame: pd.DataFrame, axes: list[str], metrics: list[str]) -> pd.DataFrame:
    """One row per axis combination; each metric as 'mean ± ci' with n, the best per column in bold."""
    done = frame[frame["status"] == "done"]
    groups = [a for a in axes if a != "seed"]
    keyed = done.groupby(groups, sort=False, dropna=False) if groups else [((), done)]
    rows, means = [], []
    for key, part in keyed:
        key = key if isinstance(key, tuple) else (key,)
        row, mean_row = dict(zip(groups, key)), {}
        for metric in metrics:
            mean, half, n = t_interval(part[metric])
            mean_row[metric] = mean
            row[metric] = "-" if n == 0 else (f"{fmt(mean)} ± {fmt(half)}" if n > 1 else fmt(mean))
        row["n"] = len(part)
        rows.append(row)
        means.append(mean_row)
    table = pd.DataFrame(rows)
    if len(table) > 1:
        for metric in metrics:
            column = pd.Series([m[metric] for m in means])
            better = metric_specs()[metric].better
            if better and column.notna().any():
                best = column.idxmin() if better == "lower" else column.idxmax()
                table.loc[best, metric] = f"**{table.loc[best, metric]}**"
    return table


def _pairs(values: list, numeric: bool) -> list[tuple]:
    return list(zip(values, values[1:])) if numeric else list(itertools.combinations(values, 2))


def paired_comparisons(frame: pd.DataFrame, axes: list[str], axis: str, metrics: list[str]) -> list[str]:
    """Sentences comparing values of one axis, paired on every other axis and the seed."""
    done = frame[frame["status"] == "done"]
    others = [a for a in axes if a != axis]
    values = list(dict.fromkeys(frame[axis]))
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    sentences = []
    for a, b in _pairs(values, numeric):
        for metric in metrics:
            left = done[done[axis] == a].set_index(others)[metric]
            right = done[done[axis] == b].set_index(others)[metric]
            diff = (right - left).dropna()
            if len(diff):
                sentences.append(_sentence(axis, a, b, metric, diff.to_numpy()))
    return sentences


def _sentence(axis: str, a, b, metric: str, diff: np.ndarray) -> str:
    mean, half, n = t_interval(diff)
    verb = "lowers" if mean < 0 else "raises"
    better = (mean < 0) == (metric_specs()[metric].better == "lower")
    judgement = "" if mean == 0 else (" (better)" if better else " (worse)")
    head = f"{axis}={b} {verb} {metric} by {fmt(abs(mean))}"
    if n < 2:
        return f"{head} relative to {axis}={a}{judgement} (1 pair, one seed: no interval can be given)"
    p = stats.ttest_rel(diff, np.zeros_like(diff)).pvalue if np.std(diff) > 0 else math.nan
    return f"{head} ± {fmt(half)} relative to {axis}={a}{judgement} (p = {fmt(p)}, {n} pairs)"

"""Intervals and paired comparisons over seeds."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

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


def p_text(p: float) -> str:
    """A p-value as papers print it: three decimals, or '< 0.001'."""
    if p != p:
        return "-"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def interval_text(mean: float, half: float) -> str:
    """mean ± half to the precision the interval supports: two significant digits of the half-width, the
    mean rounded to the same decimal place (11.7412, 0.4671 -> '11.74 ± 0.47'). Without a half-width,
    the mean alone (fmt)."""
    if mean != mean:
        return "-"
    if half <= 1e-9 * abs(mean):  # no spread but float rounding: a count (parameters) or a value by definition
        return f"{int(mean):,}" if float(mean).is_integer() else fmt(mean)
    if half != half or half <= 0 or not math.isfinite(half):
        return fmt(mean)
    rounded = float(f"{half:.2g}")  # 0.0996 -> 0.1: the place follows the rounded half-width
    return f"{at_place_of(mean, rounded)} ± {at_place_of(rounded, rounded)}"


def at_place_of(value: float, half: float) -> str:
    """`value` rounded to the decimal place that two significant digits of the half-width `half` reach
    (a difference printed beside an interval); without a usable half-width, fmt."""
    if value != value or half != half or half <= 0 or not math.isfinite(half):
        return fmt(value)
    decimals = 1 - math.floor(math.log10(float(f"{half:.2g}")))
    if decimals <= 0:  # a half-width of 10 or more: round to its tens, hundreds, ...
        return f"{round(value, decimals):.0f}"
    return f"{value:.{decimals}f}"


def header(metric: str) -> str:
    """A table header: the metric and its unit, if any."""
    unit = metric_specs()[metric].unit
    return f"{metric} ({unit})" if unit else metric


def summary_table(frame: pd.DataFrame, axes: list[str], metrics: list[str]) -> pd.DataFrame:
    """One row per axis combination; each metric as 'mean ± half-width' (95% t) rounded to what the interval
    supports, the best mean per column in bold; seeds (n), parameters and training time per row."""
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
            row[header(metric)] = "-" if n == 0 else interval_text(mean, half)
        row["n"] = len(part)
        if "converged" in part and part["converged"].notna().any():
            row["converged"] = f"{int(part['converged'].fillna(False).sum())}/{len(part)}"
            row["epoch measured"] = span_text(part["selected_epoch"])
        for column, title in (("train_seconds", "train (s)"), ("eval_seconds", "eval (s)")):
            if column in part and part[column].notna().any():
                row[title] = f"{part[column].mean():.0f}"
        rows.append(row)
        means.append(mean_row)
    table = pd.DataFrame(rows)
    if len(table) > 1:
        for metric in metrics:
            column = pd.Series([m[metric] for m in means])
            better = metric_specs()[metric].better
            if better and column.notna().any():
                best = column.idxmin() if better == "lower" else column.idxmax()
                table.loc[best, header(metric)] = f"**{table.loc[best, header(metric)]}**"
    return table


def span_text(values: pd.Series) -> str:
    """'12' or '12-30': the range of whole numbers (epochs) over cells."""
    low, high = int(values.min()), int(values.max())
    return str(low) if low == high else f"{low}-{high}"


def convergence_note(done: pd.DataFrame) -> str:
    """What a finding must say when some of its cells were still improving when training stopped."""
    if "converged" not in done or done["converged"].isna().all():
        return ""
    still = int((done["converged"] == False).sum())  # noqa: E712 - None (not recorded) is neither
    if not still:
        return ""
    return f" Not converged: {still} of {len(done)} cells were still improving when their training stopped."


def _pairs(values: list, numeric: bool) -> list[tuple]:
    return list(zip(values, values[1:])) if numeric else list(itertools.combinations(values, 2))


ALPHA = 0.05  # family-wise error rate of the Holm-corrected comparisons


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979), in the input's order; nan stays nan and is not counted.

    Sorted ascending, p_(i) becomes max over j <= i of min(1, (m - j + 1) p_(j)); reject where adjusted < alpha."""
    order = sorted((p, i) for i, p in enumerate(p_values) if p == p)
    m, running, adjusted = len(order), 0.0, [math.nan] * len(p_values)
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class Comparison:
    """Level b against level a of one axis on one metric, paired on every other axis and the seed."""

    axis: str
    a: object
    b: object
    metric: str
    mean: float  # of b - a
    half: float  # 95% t half-width
    n: int  # pairs
    p: float  # paired t-test, uncorrected
    effect: float  # Cohen's d_z: mean difference / standard deviation of the differences
    p_holm: float = math.nan  # Holm-adjusted over every comparison of this metric in the grid
    along: tuple[str, ...] = ()  # axes zipped with this one: they change with it in every pair

    @property
    def significant(self) -> bool:
        return self.p_holm < ALPHA

    @property
    def b_better(self) -> bool:
        return (self.mean < 0) == (metric_specs()[self.metric].better == "lower")


def compared_axes(frame: pd.DataFrame, axes: list[str]) -> dict[str, list[str]]:
    """The axes whose levels are compared, each with the axes that vary in lockstep with it (zipped in the
    grid): those change with it in every pair, so they cannot be held fixed and are not compared again."""
    varying = [a for a in axes if a != "seed" and frame[a].nunique() > 1]
    result, taken = {}, set()
    for axis in varying:
        if axis not in taken:
            result[axis] = [o for o in varying if o not in taken and o != axis and _lockstep(frame, axis, o)]
            taken.update(result[axis])
    return result


def _lockstep(frame: pd.DataFrame, a: str, b: str) -> bool:
    return all(frame.groupby(x, dropna=False)[y].nunique(dropna=False).max() == 1 for x, y in ((a, b), (b, a)))


def comparisons(frame: pd.DataFrame, axes: list[str], metrics: list[str]) -> list[Comparison]:
    """Every pair of levels of every axis, on every metric, with Holm's correction applied within each metric
    over all the grid's comparisons of it (every axis, every pair of levels)."""
    done = frame[frame["status"] == "done"]
    found = []
    for axis, along in compared_axes(frame, axes).items():
        others = [a for a in axes if a != axis and a not in along]
        values = list(dict.fromkeys(frame[axis]))
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        for a, b in _pairs(values, numeric):
            for metric in metrics:
                left = done[done[axis] == a].set_index(others)[metric]
                right = done[done[axis] == b].set_index(others)[metric]
                diff = (right - left).dropna().to_numpy(dtype=float)
                if len(diff):
                    found.append(replace(_compare(axis, a, b, metric, diff), along=tuple(along)))
    for metric in metrics:
        mine = [i for i, c in enumerate(found) if c.metric == metric]
        for i, adjusted in zip(mine, holm([found[i].p for i in mine])):
            found[i] = replace(found[i], p_holm=adjusted)
    return found


def along_text(along) -> str:
    """' (image_size changes with it)' for a comparison of zipped axes; '' otherwise."""
    return f" ({' and '.join(along)} {'change' if len(along) > 1 else 'changes'} with it)" if along else ""


def _compare(axis: str, a, b, metric: str, diff: np.ndarray) -> Comparison:
    mean, half, n = t_interval(diff)
    spread = diff.std(ddof=1) if n > 1 else math.nan
    if n > 1 and spread > 1e-9 * abs(mean):  # below: equal differences but for float rounding
        p, effect = stats.ttest_rel(diff, np.zeros_like(diff)).pvalue, mean / spread
    else:  # one pair, or every pair differs by the same amount: no test
        p, effect = math.nan, math.nan
    return Comparison(axis, a, b, metric, mean, half, n, float(p), float(effect))


def sentence(c: Comparison) -> str:
    verb = "lowers" if c.mean < 0 else "raises"
    judgement = "" if c.mean == 0 else (" (better)" if c.b_better else " (worse)")
    head = f"{c.axis}={c.b}{along_text(c.along)} {verb} {c.metric} by"
    if c.n < 2:
        return f"{head} {fmt(abs(c.mean))} relative to {c.axis}={c.a}{judgement} (1 pair, one seed: no interval)"
    by = f"{head} {interval_text(abs(c.mean), c.half)} relative to {c.axis}={c.a}{judgement}"
    if c.p_holm != c.p_holm:
        return f"{by} (no test: the {c.n} pairs do not vary)"
    verdict = "significant" if c.significant else "**not significant**"
    return f"{by}: d = {c.effect:.2f}, p {_eq(c.p)}, Holm p {_eq(c.p_holm)}, {verdict} ({c.n} pairs)"


def _eq(p: float) -> str:
    text = p_text(p)
    return text if text.startswith("<") else f"= {text}"


def findings(
    frame: pd.DataFrame, found: list[Comparison], axes: list[str], metrics: list[str], only_axis: str | None = None
) -> list[str]:
    """One sentence per (axis, metric): the level with the best mean, and which other levels it beats after
    Holm's correction (`found`: the frame's comparisons) and which it is not significantly different from.
    `only_axis`: the sentences of that axis only."""
    done = frame[frame["status"] == "done"]
    lines = []
    for axis, along in compared_axes(frame, axes).items():
        if only_axis not in (None, axis, *along):
            continue
        for metric in metrics:
            means = done.groupby(axis, sort=False)[metric].mean().dropna()
            if len(means) < 2:
                continue
            best = means.idxmin() if metric_specs()[metric].better == "lower" else means.idxmax()
            against = [c for c in found if c.axis == axis and c.metric == metric and best in (c.a, c.b)]
            lines.append(_finding(axis, metric, best, means[best], against, along) + convergence_note(done))
    return lines


def _finding(axis: str, metric: str, best, mean: float, against: list[Comparison], along=()) -> str:
    beaten, level = [], []
    for c in against:
        other = c.a if c.b == best else c.b
        gap = abs(c.mean)
        if c.significant:
            beaten.append(f"{other} (by {interval_text(gap, c.half)}, d = {abs(c.effect):.1f}, Holm p {_eq(c.p_holm)})")
        else:
            level.append(f"{other} (by {interval_text(gap, c.half)}, Holm p {_eq(c.p_holm)})")
    text = f"**{metric}**: {axis}={best}{along_text(along)} has the best mean ({fmt(mean)})"
    if beaten:
        text += "; it is significantly better than " + ", ".join(beaten)
    if level:
        text += "; it is **not significantly different** from " + ", ".join(level)
    return text + "."


def claim_verdict(c: Comparison | None, claimed_better) -> str:
    """Whether a claim "claimed_better beats the other level" holds in a comparison of the two levels."""
    if c is None or c.n == 0:
        return "Not testable here: no paired cells."
    other = c.a if c.b == claimed_better else c.b
    agrees = c.mean != 0 and (c.b_better if c.b == claimed_better else not c.b_better)
    gap = f"difference {interval_text(abs(c.mean), c.half)} in favour of {claimed_better if agrees else other}"
    if c.p_holm != c.p_holm:
        return f"Not testable here ({c.n} pairs without spread): {gap}."
    test = f"d = {abs(c.effect):.2f}, Holm p {_eq(c.p_holm)}, {c.n} pairs"
    if not c.significant:
        return f"**Not significant here**: {gap} ({test})."
    return f"**{'Holds' if agrees else 'Reversed'} here**: {gap} ({test})."

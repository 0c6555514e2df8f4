"""Intervals and paired comparisons over seeds."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import optimize, stats

from benchmark.metrics.registry import metric_specs
from benchmark.report.comparability import metrics_along


def t_interval(values) -> tuple[float, float, int]:
    """(mean, half-width of the 95% t-interval, n); the half-width is nan when n < 2."""
    values = np.asarray([v for v in values if v is not None and v == v], dtype=float)
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
    """Four significant digits, never in scientific notation: a count or a large value as a whole number
    with thousands separators (676,912), a small one in fixed decimals (0.0001207)."""
    if value != value:
        return "-"
    if abs(value) >= 999.95:  # where .4g would switch to an exponent
        return f"{value:,.0f}"
    if value == 0 or abs(value) >= 1e-3:
        return f"{value:.4g}"
    decimals = min(3 - math.floor(math.log10(abs(value))), 12)
    return f"{value:.{decimals}f}"


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
        return f"{round(value, decimals):,.0f}"
    return f"{value:,.{decimals}f}"


def header(metric: str) -> str:
    """A table header: the metric and its unit, if any."""
    unit = metric_specs()[metric].unit
    return f"{metric} ({unit})" if unit else metric


def summary_table(frame: pd.DataFrame, axes: list[str], metrics: list[str], unranked=()) -> pd.DataFrame:
    """One row per axis combination; each metric as 'mean ± half-width' (95% t) rounded to what the interval
    supports, the best mean per column in bold (not for `unranked` ones); seeds (n), parameters and training
    time per row."""
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
        if "sample_ms_per_image" in done and done["sample_ms_per_image"].notna().any():  # bench perf sample ran
            for column, title in PER_IMAGE_COSTS.items():
                row[title] = "-" if part[column].isna().all() else _ms_text(part[column].mean())
            row["cell (s)"] = f"{part['wall_seconds'].mean():.0f}"
        rows.append(row)
        means.append(mean_row)
    table = pd.DataFrame(rows)
    for metric in [m for m in metrics if m not in unranked and metric_specs()[m].better]:
        _bold_best(table, pd.Series([m[metric] for m in means]), metric, groups)
    return table


def _bold_best(table: pd.DataFrame, means: pd.Series, metric: str, groups: list[str]) -> None:
    """The best mean of `metric` in bold: over every row, or within each level of the axes its value
    depends on (a per-image sum's best at each image size, never across sizes)."""
    fields = [a for a in groups if any(field == a for field, _ in metric_specs()[metric].depends_on)]
    blocks = table.groupby(fields, sort=False, dropna=False).indices.values() if fields else [table.index]
    for rows in blocks:
        column = means.iloc[list(rows)]
        if len(column) > 1 and column.notna().any():
            best = column.idxmin() if metric_specs()[metric].better == "lower" else column.idxmax()
            table.loc[best, header(metric)] = f"**{table.loc[best, header(metric)]}**"


PER_IMAGE_COSTS = {  # frame column -> table header; the grid's report explains how each was measured
    "train_ms_per_image": "train (ms/image)",
    "sample_ms_per_image": "sample (ms/image)",
}


def _ms_text(ms: float) -> str:
    return f"{ms:,.0f}" if ms >= 100 else f"{ms:.3g}"


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


ALPHA = 0.05  # family-wise error rate of the Holm-corrected comparisons
MIN_SEEDS = 3  # a significance test needs pairs from at least this many seeds: below, differences only
POWER = 0.8  # the power of the minimal detectable effect
MAX_SEEDS_SHOWN = 10_000  # "more than" beyond it


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979), in the input's order; nan stays nan and is not counted.

    Sorted ascending, p_(i) becomes max over j <= i of min(1, (m - j + 1) p_(j)); reject where adjusted < alpha."""
    order = sorted((p, i) for i, p in enumerate(p_values) if p == p)
    m, running, adjusted = len(order), 0.0, [math.nan] * len(p_values)
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def power(difference: float, spread: float, pairs: int, alpha: float) -> float:
    """Power of the two-sided paired t-test at level `alpha` with `pairs` pairs whose differences have
    standard deviation `spread`, against a true mean difference `difference` (noncentral t)."""
    df = pairs - 1
    critical = stats.t.ppf(1 - alpha / 2, df)
    shift = difference * math.sqrt(pairs) / spread
    upper, lower = stats.nct.sf(critical, df, shift), stats.nct.cdf(-critical, df, shift)
    # scipy's series fails (nan) far in the tails, where the probability is 1 or 0
    upper = upper if upper == upper else float(shift > critical)
    lower = lower if lower == lower else float(shift < -critical)
    return float(upper + lower)


def detectable_difference(spread: float, pairs: int, alpha: float, target: float = POWER) -> float:
    """The smallest mean paired difference the test detects with probability `target` (the minimal
    detectable effect), at the observed spread and number of pairs."""
    high = spread
    while power(high, spread, pairs, alpha) < target:
        high *= 2
    return float(optimize.brentq(lambda d: power(d, spread, pairs, alpha) - target, 0.0, high, xtol=1e-12 * high))


def pairs_needed(
    difference: float, spread: float, alpha: float, target: float = POWER, limit: int = MAX_SEEDS_SHOWN
) -> int | None:
    """The fewest pairs with which the test detects `difference` with probability `target` (None: more than
    `limit` pairs, or no difference at all)."""
    if difference == 0 or power(abs(difference), spread, limit, alpha) < target:
        return None
    low, high = 2, 2
    while power(abs(difference), spread, high, alpha) < target:
        low, high = high, min(high * 2, limit)
    while low < high:  # power grows with the pairs: the first n that reaches the target
        middle = (low + high) // 2
        low, high = (middle + 1, high) if power(abs(difference), spread, middle, alpha) < target else (low, middle)
    return high


def effect_interval(effect: float, pairs: int) -> tuple[float, float]:
    """95% interval of Cohen's d_z from the noncentral t distribution of t = d_z sqrt(n) (exact for normal
    differences): at 3 pairs a d of 56 spans about 9 to 108, which the point estimate alone hides."""
    t_obs, df = abs(effect) * math.sqrt(pairs), pairs - 1

    def below(shift: float, q: float) -> float:
        value = stats.nct.cdf(t_obs, df, shift)
        if value != value:  # scipy's series fails far in the tails, where the cdf is 1 or 0
            value = 1.0 if shift < t_obs else 0.0
        return value - q

    span = 10 + t_obs
    low, high = (
        optimize.brentq(below, t_obs - span, t_obs + span, args=(q,)) / math.sqrt(pairs) for q in (0.975, 0.025)
    )
    return (low, high) if effect >= 0 else (-high, -low)


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
    p_holm: float = math.nan  # Holm-adjusted over the comparison's family
    along: tuple[str, ...] = ()  # axes zipped with this one: they change with it in every pair
    seeds: int = 0  # distinct seeds among the pairs
    spread: float = math.nan  # standard deviation of the paired differences
    untested: str = ""  # why there is no test ("" when there is one)
    effect_low: float = math.nan  # 95% interval of d_z
    effect_high: float = math.nan
    family: int = 0  # comparisons in its Holm family
    detectable: float = math.nan  # minimal detectable difference (80% power, level ALPHA / family)
    seeds_needed: int | None = None  # seeds the observed difference would need for that power

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


def comparisons(frame: pd.DataFrame, axes: list[str], metrics: list[str], family: str = "metric") -> list[Comparison]:
    """Every pair of levels of every axis (numeric axes too), on every metric comparable along it (its
    normalised form where it is not, report/comparability.py), Holm-corrected within each family: every
    comparison of one metric (`family="metric"`), or every comparison of all `metrics` (`"all"`)."""
    done = frame[frame["status"] == "done"]
    found = []
    for axis, along in compared_axes(frame, axes).items():
        others = [a for a in axes if a != axis and a not in along]
        values = list(dict.fromkeys(frame[axis]))
        for metric in metrics_along(frame, axis, along, metrics)[0]:
            for a, b in itertools.combinations(values, 2):
                left = done[done[axis] == a].set_index(others)[metric]
                right = done[done[axis] == b].set_index(others)[metric]
                diff = (right - left).dropna()
                if len(diff):
                    seeds = diff.index.get_level_values("seed").nunique() if "seed" in others else len(diff)
                    found.append(_compare(axis, a, b, metric, diff.to_numpy(dtype=float), seeds, tuple(along)))
    if family == "all":
        families = [list(range(len(found)))]
    else:
        families = [[i for i, c in enumerate(found) if c.metric == m] for m in dict.fromkeys(c.metric for c in found)]
    for members in families:
        tested = sum(1 for i in members if found[i].p == found[i].p)
        for i, adjusted in zip(members, holm([found[i].p for i in members])):
            found[i] = _with_power(replace(found[i], p_holm=adjusted, family=tested))
    return found


def _compare(axis: str, a, b, metric: str, diff: np.ndarray, seeds: int, along: tuple[str, ...]) -> Comparison:
    mean, half, n = t_interval(diff)
    spread = float(diff.std(ddof=1)) if n > 1 else math.nan
    base = Comparison(axis, a, b, metric, mean, half, n, math.nan, math.nan, along=along, seeds=seeds, spread=spread)
    if seeds < MIN_SEEDS:
        return replace(base, untested=f"{seeds} seed{'s' * (seeds != 1)}: a test needs at least {MIN_SEEDS}")
    if not spread > 1e-9 * abs(mean):  # equal differences but for float rounding
        return replace(base, untested="the pairs do not vary")
    effect = mean / spread
    low, high = effect_interval(effect, n)
    p = float(stats.ttest_rel(diff, np.zeros_like(diff)).pvalue)
    return replace(base, p=p, effect=effect, effect_low=low, effect_high=high)


def _with_power(c: Comparison) -> Comparison:
    """A tested comparison that is not significant, with its minimal detectable difference and the seeds the
    observed difference would need, at the level Holm's first step applies to its family (ALPHA / family)."""
    if c.untested or c.significant:
        return c
    alpha = ALPHA / c.family
    per_seed = c.n / c.seeds  # pairs each seed contributes (one per level of the other axes)
    needed = pairs_needed(c.mean, c.spread, alpha, limit=math.ceil(MAX_SEEDS_SHOWN * per_seed))
    seeds = None if needed is None else math.ceil(needed / per_seed)
    return replace(c, detectable=detectable_difference(c.spread, c.n, alpha), seeds_needed=seeds)


def family_text(found: list[Comparison], family: str = "metric") -> str:
    """Which comparisons each Holm family spans, for a report's text."""
    tested = [c for c in found if not c.untested]
    if not found:
        return "No comparison spans the whole grid."
    if not tested:
        return "No comparison here has the seeds for a test."
    if family == "all":
        metrics = list(dict.fromkeys(c.metric for c in tested))
        names = ", ".join(metrics)
        return (
            f"Holm's family: all {len(tested)} tested comparisons of the {len(metrics)} metrics ({names}), one family."
        )
    parts = []
    for metric in dict.fromkeys(c.metric for c in tested):
        mine = [c for c in tested if c.metric == metric]
        axes = ", ".join(
            f"{axis} {sum(1 for c in mine if c.axis == axis)}" for axis in dict.fromkeys(c.axis for c in mine)
        )
        parts.append(f"{metric}: {len(mine)} ({axes})")
    return (
        "Holm's families, one per metric, each spanning every tested pair of levels of every axis: "
        + "; ".join(parts)
        + "."
    )


def along_text(along) -> str:
    """' (image_size changes with it)' for a comparison of zipped axes; '' otherwise."""
    return f" ({' and '.join(along)} {'change' if len(along) > 1 else 'changes'} with it)" if along else ""


def effect_text(c: Comparison) -> str:
    return f"d = {c.effect:.2f} [{c.effect_low:.2f}, {c.effect_high:.2f}]"


def power_text(c: Comparison) -> str:
    """What a null could have seen: the minimal detectable difference and the seeds the observed one needs."""
    if c.detectable != c.detectable:
        return ""
    if c.seeds_needed is None:
        needs = (
            f"no number of seeds up to {MAX_SEEDS_SHOWN:,} would detect the observed one"
            if c.mean
            else "the observed difference is 0"
        )
    else:
        needs = f"the observed difference would need {c.seeds_needed:,} seeds"
    return f"; detectable with 80% power: {at_place_of(c.detectable, c.half)} or more, {needs}"


def gap_text(c: Comparison) -> str:
    """The size of a difference: with its interval, or alone where there are too few seeds for one (an
    interval over the pairs of one seed would be a spread over the other axes' levels, not over training)."""
    if c.n < 2 or c.seeds < MIN_SEEDS:
        return fmt(abs(c.mean))
    return interval_text(abs(c.mean), c.half)


def sentence(c: Comparison) -> str:
    verb = "lowers" if c.mean < 0 else "raises"
    judgement = "" if c.mean == 0 else (" (better)" if c.b_better else " (worse)")
    head = f"{c.axis}={c.b}{along_text(c.along)} {verb} {c.metric} by"
    if c.n < 2:
        return (
            f"{head} {fmt(abs(c.mean))} relative to {c.axis}={c.a}{judgement} (1 pair, one seed: no interval, no test)"
        )
    by = f"{head} {gap_text(c)} relative to {c.axis}={c.a}{judgement}"
    if c.untested:
        return f"{by} (no test: {c.untested}; {c.n} pairs)"
    verdict = "significant" if c.significant else "**not significant**"
    return f"{by}: {effect_text(c)}, p {_eq(c.p)}, Holm p {_eq(c.p_holm)}, {verdict} ({c.n} pairs){power_text(c)}"


def _eq(p: float) -> str:
    text = p_text(p)
    return text if text.startswith("<") else f"= {text}"


def findings(
    frame: pd.DataFrame, found: list[Comparison], axes: list[str], metrics: list[str], only_axis: str | None = None
) -> list[str]:
    """One sentence per (axis, metric): the level with the best mean, which other levels it beats after
    Holm's correction (`found`: the frame's comparisons), which it is not significantly different from and
    what those tests could have detected, and which differences had too few seeds for a test; a metric not
    comparable along the axis gets its refusal instead. `only_axis`: the sentences of that axis only."""
    done = frame[frame["status"] == "done"]
    lines = []
    for axis, along in compared_axes(frame, axes).items():
        if only_axis not in (None, axis, *along):
            continue
        compared, refused = metrics_along(frame, axis, along, metrics)
        lines += [r.text() for r in refused]
        others = [a for a in axes if a != axis and a not in along]
        for metric in compared:
            ranked = _best_level(done, found, axis, others, metric)
            if ranked is not None:
                best, mean, against = ranked
                lines.append(_finding(axis, metric, best, mean, against, along) + convergence_note(done))
    return lines


def _best_level(done: pd.DataFrame, found: list[Comparison], axis: str, others: list[str], metric: str):
    """The level of `axis` with the best mean on `metric` (over the cells measured at every level), its mean
    and its comparisons with the other levels; None where fewer than two levels are measured."""
    means = _shared(done, axis, others, metric).groupby(axis, sort=False)[metric].mean().dropna()
    if len(means) < 2:
        return None
    best = means.idxmin() if metric_specs()[metric].better == "lower" else means.idxmax()
    return best, means[best], [c for c in found if c.axis == axis and c.metric == metric and best in (c.a, c.b)]


def _shared(done: pd.DataFrame, axis: str, others: list[str], metric: str) -> pd.DataFrame:
    """The cells whose combination of the other axes is measured at every level of `axis`: the means a
    finding ranks are then over the same combinations as its paired tests (a failed cell, or a level that
    exists at one combination only, does not tilt them)."""
    measured = done[done[metric].notna()]
    if not others:
        return measured
    levels = measured[axis].nunique()
    complete = measured.groupby(others, dropna=False)[axis].transform("nunique") == levels
    return measured[complete]


def _finding(axis: str, metric: str, best, mean: float, against: list[Comparison], along=()) -> str:
    """The best mean's level against each other level. The tests are paired: where a failed or missing cell
    leaves the paired difference favouring the other level, the sentence says so (reversed)."""
    beaten, reversed_, level, untested = [], [], [], []
    for c in against:
        other = c.a if c.b == best else c.b
        gap = gap_text(c)
        if c.untested or c.n < 2:
            untested.append(f"{other} (by {gap}; no test: {c.untested or 'one pair'})")
        elif c.significant:
            test = f"by {gap}, d = {abs(c.effect):.1f} [{_abs_interval(c)}], Holm p {_eq(c.p_holm)}"
            favours_best = c.mean != 0 and (c.b_better == (c.b == best))
            (beaten if favours_best else reversed_).append(f"{other} ({test})")
        else:
            level.append(f"{other} (by {gap}, Holm p {_eq(c.p_holm)}{power_text(c)})")
    text = f"**{metric}**: {axis}={best}{along_text(along)} has the best mean ({fmt(mean)})"
    if beaten:
        text += "; it is significantly better than " + ", ".join(beaten)
    if reversed_:
        text += "; yet on the paired cells it is significantly worse than " + ", ".join(reversed_)
    if level:
        text += "; it is **not significantly different** from " + ", ".join(level)
    if untested:
        text += "; it differs, untested, from " + ", ".join(untested)
    return text + "."


def _abs_interval(c: Comparison) -> str:
    """The interval of |d|: from 0 where the 95% interval of d spans 0 (a significant difference's never does)."""
    if c.effect_low < 0 < c.effect_high:
        return f"0, {max(-c.effect_low, c.effect_high):.1f}"
    low, high = sorted((abs(c.effect_low), abs(c.effect_high)))
    return f"{low:.1f}, {high:.1f}"


def claim_verdict(c: Comparison | None, claimed_better) -> str:
    """Whether a claim "claimed_better beats the other level" holds in a comparison of the two levels."""
    if c is None or c.n == 0:
        return "Not testable here: no paired cells."
    other = c.a if c.b == claimed_better else c.b
    agrees = c.mean != 0 and (c.b_better if c.b == claimed_better else not c.b_better)
    gap = f"difference {gap_text(c)} in favour of {claimed_better if agrees else other}"
    if c.untested:
        return f"Not testable here ({c.untested}; {c.n} pairs): {gap}."
    test = f"d = {abs(c.effect):.2f} [{_abs_interval(c)}], Holm p {_eq(c.p_holm)}, {c.n} pairs"
    if not c.significant:
        return f"**Not significant here**: {gap} ({test}{power_text(c)})."
    return f"**{'Holds' if agrees else 'Reversed'} here**: {gap} ({test})."


def answer_sentence(
    frame: pd.DataFrame, found: list[Comparison], axes: list[str], metrics: list[str], axis: str
) -> str:
    """The question answered in one sentence, from the same comparisons as its findings: on each metric, the
    level of `axis` with the best mean and whether it beats every other level after Holm's correction, leads
    (the levels it is and is not significantly ahead of), or differs from none by more than its tests could
    have missed ("no significant difference; X or more would have been detected": X the minimal detectable
    difference, not a bound on the true one); a level it was not tested against, or a paired test that
    favours another level, is said; then whether the cells had converged."""
    done = frame[frame["status"] == "done"]
    groups = compared_axes(frame, axes)
    axis, along = next(((a, g) for a, g in groups.items() if axis in (a, *g)), (axis, None))
    if along is None:
        return ""
    compared, _ = metrics_along(frame, axis, along, metrics)
    others = [a for a in axes if a != axis and a not in along]
    name = f"{axis}{along_text(along)}"
    levels = list(dict.fromkeys(frame[axis].dropna()))
    parts: dict[tuple, list[str]] = {}
    for metric in compared:
        ranked = _best_level(done, found, axis, others, metric)
        if ranked is None:
            continue
        best, _, against = ranked

        def other(c: Comparison, best=best):
            return c.a if c.b == best else c.b

        tested = [c for c in against if not c.untested and c.n >= 2]
        untested = [str(other(c)) for c in against if c not in tested]
        untested += [str(v) for v in levels if v != best and all(v not in (c.a, c.b) for c in against)]
        wins = [c for c in tested if c.significant and c.mean != 0 and c.b_better == (c.b == best)]
        losses = [c for c in tested if c.significant and c not in wins]
        level = [c for c in tested if not c.significant]
        if losses:
            key = ("conflict", best, tuple(str(other(c)) for c in losses))
        elif wins and not level and not untested:
            key = ("best", best)
        elif wins:
            key = ("leads", best, tuple(str(other(c)) for c in wins), tuple(str(other(c)) for c in level))
        elif level:
            missed = max(c.detectable for c in level)
            key = ("null", f"{at_place_of(missed, max(c.half for c in level))} on {metric}")
        else:
            key = ("untested", "; ".join(sorted({c.untested or "one pair" for c in against})) or "no pairs")
        parts.setdefault(key, []).append(metric)
        if untested and key[0] != "untested":
            parts.setdefault(("not tested", best, tuple(untested)), []).append(metric)
    return _answer_text(parts, name) + convergence_note(done) if parts else ""


def _answer_text(parts: dict[tuple, list[str]], name: str) -> str:
    texts, nulls = [], []
    for key, metrics in parts.items():
        kind = key[0]
        if kind == "best":
            texts.append(f"{name}={key[1]} is significantly best on {_and(metrics)}")
        elif kind == "leads":
            rest = f", not of {_and(list(key[3]))}" if key[3] else ""
            texts.append(f"{name}={key[1]} leads on {_and(metrics)}: significantly ahead of {_and(list(key[2]))}{rest}")
        elif kind == "conflict":
            texts.append(
                f"on {_and(metrics)} the best mean ({name}={key[1]}) is significantly worse than {_and(list(key[2]))} "
                "on the paired cells (see the findings)"
            )
        elif kind == "null":
            nulls.append(key[1])
        elif kind == "not tested":
            texts.append(f"{name}={key[1]} was not tested against {_and(list(key[2]))} on {_and(metrics)}")
        else:
            texts.append(f"{_and(metrics)} untested ({key[1]})")
    if nulls:
        texts.append(
            f"no significant difference on {_and([n.split(' on ', 1)[1] for n in nulls])} at this scale (differences "
            f"of {_and([n.split(' on ', 1)[0] for n in nulls])} or more would have been detected with 80% power)"
        )
    return "; ".join(texts) + "."


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

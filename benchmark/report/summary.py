"""The answer to a grid's question at a glance, and every table as LaTeX for a paper.

The summary has one row per level of the question's axis, each metric as mean ± 95% t-interval over
every cell of that level, and a compact letter display (Piepho 2004): levels that share a letter are not
significantly different on that metric after Holm's correction (or had too few seeds for a test); the
letters are the maximal groups of mutually indistinguishable levels, `a` for the group of the best mean.
"""

from __future__ import annotations

import itertools
import re

import pandas as pd

from benchmark.metrics.registry import metric_specs
from benchmark.report.comparability import metrics_along
from benchmark.report.stats import Comparison, compared_axes, header, interval_text, t_interval


def letter_display(levels: list, means: dict, found: list[Comparison], better: str) -> dict:
    """level -> letters: each maximal set of levels no two of which differ significantly gets one letter."""
    apart = {frozenset((c.a, c.b)) for c in found if c.significant}
    together = {level: {o for o in levels if o != level and frozenset((level, o)) not in apart} for level in levels}
    groups: list[frozenset] = []
    _cliques(set(), set(levels), set(), together, groups)
    sign = 1 if better == "lower" else -1
    groups.sort(key=lambda g: (min(sign * means[level] for level in g), sorted(map(levels.index, g))))
    letters = {level: "" for level in levels}
    for letter, group in zip(_alphabet(), groups):
        for level in sorted(group, key=levels.index):
            letters[level] += letter
    return letters


def _cliques(chosen: set, candidates: set, excluded: set, together: dict, out: list) -> None:
    """Bron-Kerbosch: every maximal clique of the 'not significantly different' graph."""
    if not candidates and not excluded:
        out.append(frozenset(chosen))
        return
    for level in sorted(candidates, key=str):
        _cliques(chosen | {level}, candidates & together[level], excluded & together[level], together, out)
        candidates = candidates - {level}
        excluded = excluded | {level}


def _alphabet():
    for size in itertools.count(1):
        for letters in itertools.product("abcdefghijklmnopqrstuvwxyz", repeat=size):
            yield "".join(letters)


def summary_frame(
    frame: pd.DataFrame, found: list[Comparison], axes: list[str], axis: str, metrics: list[str]
) -> pd.DataFrame:
    """One row per level of `axis`: n cells, each metric comparable along it as 'mean ± half (letters)', the
    best mean in bold."""
    done = frame[frame["status"] == "done"]
    along = compared_axes(frame, axes).get(axis, [])
    shown = metrics_along(frame, axis, along, metrics)[0]
    levels = list(dict.fromkeys(done[axis]))
    rows = {level: {axis: level, "cells": int((done[axis] == level).sum())} for level in levels}
    for metric in shown:
        means = done.groupby(axis, sort=False)[metric].mean().to_dict()
        mine = [c for c in found if c.axis == axis and c.metric == metric]
        better = metric_specs()[metric].better
        letters = letter_display(levels, means, mine, better)
        measured = {level: mean for level, mean in means.items() if mean == mean}
        best = (min if better == "lower" else max)(measured, key=measured.get) if len(measured) > 1 else None
        for level in levels:
            mean, half, n = t_interval(done.loc[done[axis] == level, metric])
            text = f"{interval_text(mean, half)} ({letters[level]})" if n else "-"
            rows[level][header(metric)] = f"**{text}**" if level == best and n else text
    return pd.DataFrame(list(rows.values()))


def latex_table(table: pd.DataFrame, caption: str) -> str:
    """A booktabs table of a report table: markdown bold as \\textbf, ± as $\\pm$, text escaped."""
    align = "l" * 1 + "r" * (len(table.columns) - 1)
    lines = [
        "\\begin{table}[ht]",
        "\\centering",
        f"\\caption{{{_tex(caption)}}}",
        f"\\begin{{tabular}}{{{align}}}",
        "\\toprule",
        " & ".join(_tex(str(c)) for c in table.columns) + " \\\\",
        "\\midrule",
        *[" & ".join(_tex(str(v)) for v in row) + " \\\\" for row in table.itertuples(index=False)],
        "\\bottomrule",
        "\\end{tabular}",
        "\\end{table}",
    ]
    return "\n".join(lines) + "\n"


_SPECIAL = {
    "\\": "\\textbackslash{}",
    "&": "\\&",
    "%": "\\%",
    "$": "\\$",
    "#": "\\#",
    "_": "\\_",
    "{": "\\{",
    "}": "\\}",
    "~": "\\~{}",
    "^": "\\^{}",
}


def _tex(text: str) -> str:
    bold = re.fullmatch(r"\*\*(.*)\*\*", text)
    inner = bold.group(1) if bold else text
    escaped = "".join(_SPECIAL.get(ch, ch) for ch in inner)
    escaped = escaped.replace("±", "$\\pm$").replace("`", "")
    return f"\\textbf{{{escaped}}}" if bold else escaped

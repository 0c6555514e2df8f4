"""A report against published figures: a table beside the cells' means, sentences on where they differ,
and when a learning curve reaches each figure."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.metrics.registry import metric_specs
from benchmark.report.context import report_table
from benchmark.report.stats import at_place_of, fmt, interval_text, t_interval


def published_rows(frame: pd.DataFrame, published: dict, axes: list[str]) -> list[dict]:
    """The published figures beside this report's: one row per group of cells and metric."""
    done = frame[frame["status"] == "done"]
    groups = []
    for row in published.get("rows") or [{"where": published.get("where", {}), "metrics": published["metrics"]}]:
        part = done
        for field, value in row["where"].items():
            part = part[part[field] == value]
        varying = [a for a in axes if a != "seed" and part[a].nunique() > 1] if "rows" not in published else []
        splits = list(part.groupby(varying[0], sort=False)) if varying else [(None, part)]
        for key, cells in splits:
            label = ", ".join(f"{k}={v}" for k, v in row["where"].items())
            label = ", ".join(x for x in (label, f"{varying[0]}={key}" if varying else "") if x) or "all cells"
            groups += [(label, metric, value, cells) for metric, value in row["metrics"].items()]
    rows = []
    for label, metric, value, cells in groups:
        here, difference = _against(cells, metric, value)
        rows.append({"cells": label, "metric": metric, "published": fmt(value), "here": here, "difference": difference})
    return rows


def published_section(frame: pd.DataFrame, logs: pd.DataFrame, published: dict, axes: list[str], assets: Path) -> str:
    """The published figures beside ours, one column per value of the grid's first varying axis; a
    published table (`rows`: figures for groups of cells, e.g. one per task and model) row by row."""
    if "rows" in published:
        return _published_rows_section(frame, published, assets)
    done = frame[frame["status"] == "done"]
    lines = ["## Against the published figures\n", published.get("source", "").strip() + "\n"]
    where = published.get("where", {})  # the cells the published figures describe, e.g. {conditioning: none}
    for field, value in where.items():
        done = done[done[field] == value]
        logs = logs[logs[field] == value] if field in logs else logs
    if where:
        lines.append("Compared: the cells with " + ", ".join(f"{k}={v}" for k, v in where.items()) + ".\n")
    epochs = sorted(done["trained_epochs"].dropna().astype(int).unique())
    if published.get("epochs") and epochs and epochs != [published["epochs"]]:
        lines.append(
            f"**These cells trained for {', '.join(map(str, epochs))} epochs, the published ones for "
            f"{published['epochs']}.**\n"
        )
    varying = [a for a in axes if a != "seed" and done[a].nunique() > 1]
    compared = ", ".join(f"{k}={v}" for k, v in where.items()) or "all cells"
    groups = list(done.groupby(varying[0], sort=False)) if varying else [(compared, done)]
    rows = []
    for metric, value in published.get("metrics", {}).items():
        row = {"metric": metric, "published": fmt(value)}
        for key, part in groups:
            row[f"here, {varying[0]}={key}" if varying else str(key)] = "{} ({})".format(*_against(part, metric, value))
        rows.append(row)
    caption = "Against the published figures: mean and 95% t-interval over seeds, the difference in brackets."
    lines += [
        report_table(pd.DataFrame(rows), assets, "published", caption),
        "Mean ± 95% t-interval over seeds; in brackets, the difference from the published figure, to the "
        "same decimal place.\n",
    ]
    lines += [_published_sentence(metric, value, groups, varying) for metric, value in published["metrics"].items()]
    lines += _curve_lines(done, logs, published["metrics"], varying)
    return "\n".join(lines) + "\n"


def _published_rows_section(frame: pd.DataFrame, published: dict, assets: Path) -> str:
    done = frame[frame["status"] == "done"]
    rows = []
    for row in published["rows"]:
        part = done
        for field, value in row["where"].items():
            part = part[part[field] == value]
        cells = ", ".join(f"{field}={value}" for field, value in row["where"].items())
        for metric, value in row["metrics"].items():
            here, difference = _against(part, metric, value)
            rows.append(
                {
                    "cells": cells,
                    "metric": metric,
                    "published": fmt(value),
                    "here (mean ± 95% t-interval over seeds)": here,
                    "difference": difference,
                }
            )
    caption = "Against the published figures, row by row: mean and 95% t-interval over seeds."
    return "\n".join(
        [
            "## Against the published figures\n",
            published.get("source", "").strip() + "\n",
            report_table(pd.DataFrame(rows), assets, "published", caption),
        ]
    )


def _against(cells: pd.DataFrame, metric: str, published: float) -> tuple[str, str]:
    """The cells' mean ± 95% t-interval (with n) of a metric, and its difference from a published figure at
    the interval's decimal place."""
    mean, half, n = t_interval(cells[metric]) if metric in cells else (float("nan"), float("nan"), 0)
    if not n:
        return ("no cell done" if cells.empty else f"not measured in these {len(cells)} cells' data"), "-"
    return f"{interval_text(mean, half)} (n = {n})", at_place_of(mean - published, half)


def _curve_lines(done: pd.DataFrame, logs: pd.DataFrame, published: dict, varying: list[str]) -> list[str]:
    """Where the cells recorded a learning curve: the first epoch at which each variant's mean over seeds
    reaches each published figure."""
    names = [m for m in published if f"test_{m}" in logs]
    if not names or done["curve_images"].isna().all():
        return []
    images = int(done["curve_images"].dropna().iloc[0])
    lines = [
        f"\nLearning curve: after every epoch each cell measured {', '.join(names)} on the first {images:,} test "
        "images (the figure *Test metrics after each epoch* below). Where the mean over seeds first reaches the "
        "published figure:\n"
    ]
    parts = list(logs.groupby(varying[0], sort=False)) if varying else [("all cells", logs)]
    for metric in names:
        value, lower = published[metric], metric_specs()[metric].better == "lower"
        for key, part in parts:
            curve = part.groupby("epoch")[f"test_{metric}"].mean()
            reached = curve[curve <= value] if lower else curve[curve >= value]
            name = f"{varying[0]}={key}" if varying else key
            last = f"{fmt(curve.iloc[-1])} after epoch {curve.index[-1]}"
            verdict = f"reaches {fmt(value)} at epoch {reached.index[0]}" if len(reached) else "not reached"
            lines.append(f"- {metric}, {name}: {verdict} ({last})")
    return lines


def _published_sentence(metric: str, value: float, groups, varying: list[str]) -> str:
    """Where we differ from a published figure, in words."""
    intervals = {key: t_interval(part[metric]) for key, part in groups}
    here = {key: mean for key, (mean, _, _) in intervals.items()}
    if all(v > value for v in here.values()) or all(v < value for v in here.values()):
        side = "higher" if next(iter(here.values())) > value else "lower"
        closest = min(here, key=lambda k: abs(here[k] - value))
        name = f"{varying[0]}={closest}" if varying else closest
        return (
            f"- {metric}: every variant here is {side} than the published {fmt(value)}; the closest is "
            f"{name} at {interval_text(*intervals[closest][:2])}."
        )
    return f"- {metric}: the published {fmt(value)} lies within the range of the variants here."

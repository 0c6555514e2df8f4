"""Seaborn figures with one fixed style and dpi, written so that a rerun gives identical PNGs."""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from benchmark.report.stats import fmt, t_errorbar  # noqa: E402

DPI = 110
PANELS_PER_ROW = 4  # wider strips are unreadable at page width
sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")
matplotlib.rcParams["svg.hashsalt"] = "cvae-bench"  # SVG element ids from a fixed salt: reruns are identical


def _epoch_ticks():
    """Whole epochs, at most 6 labels, so that 500 epochs stay legible."""
    return matplotlib.ticker.MaxNLocator(nbins=6, integer=True)


def save(fig, path: Path, vector: bool = True) -> None:
    """The figure as PNG and, for papers, as SVG beside it (`vector`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    if vector:
        fig.savefig(path.with_suffix(".svg"), bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)


def _panels(metrics: list, width: float = 4.2, columns: int | None = None):
    """One panel per metric, at most PANELS_PER_ROW to a row (or `columns`); the unused panels of the last row
    removed."""
    columns = columns or min(len(metrics), PANELS_PER_ROW)
    rows = -(-len(metrics) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, 3.6 * rows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[len(metrics) :]:
        ax.remove()
    return fig, flat[: len(metrics)]


def _nonnegative_errorbar(values) -> tuple[float, float]:
    """The 95% t-interval of a quantity that cannot be negative, cut at 0."""
    low, high = t_errorbar(values)
    return max(low, 0.0), high


def _as_levels(frame: pd.DataFrame, hue: str | None) -> pd.DataFrame:
    """A numeric hue as ordered categories, so that the legend shows the real levels (16, 64), not a
    colour scale's ticks."""
    if hue is None or not pd.api.types.is_numeric_dtype(frame[hue]):
        return frame
    levels = sorted(frame[hue].dropna().unique())
    return frame.assign(**{hue: pd.Categorical(frame[hue].map(_level_text), [_level_text(v) for v in levels])})


def palette(frame: pd.DataFrame, hue: str | None) -> dict | None:
    """Colours for the levels of a registered axis (conditioning, backbone, ...) by their place in its
    registry, so that one mechanism has one colour in every report; None (seaborn's order) otherwise."""
    from benchmark.config import registry_of

    registry = registry_of(hue) if hue else None
    if registry is None:
        return None
    colours, names = sns.color_palette("colorblind", 10), registry.names()
    levels = list(frame[hue].dropna().unique())
    unknown = [level for level in levels if level not in names]  # registered elsewhere: after the known ones
    place = {level: names.index(level) if level in names else len(names) + unknown.index(level) for level in levels}
    return {level: colours[place[level] % 10] for level in levels}


def _level_text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def metrics_against_axis(
    frame: pd.DataFrame, axis: str, hue: str | None, metrics: list[str], path: Path, row: str | None = None
) -> None:
    """Points with 95% t-interval error bars over seeds (a bar from 0 misleads for values that can be
    negative or far from 0), one position per level so that the ticks are the real levels (8, 32, not a
    linear scale's 10, 20, 30); the levels of a numeric axis joined by a line (not those of a seed axis:
    its draws are independent), the colours dodged so that their intervals do not cover each other. `row`:
    a row of panels per level of that axis, each with its own y scale (a metric not comparable across its
    levels is read within one row only)."""
    done = frame[frame["status"] == "done"]
    if "seed" in done:  # the other axes' levels averaged within each seed: the interval is over seeds only
        keys = [k for k in (row, axis, hue, "seed") if k is not None]
        done = done.groupby(keys, sort=False, dropna=False)[metrics].mean().reset_index()
    done = _as_levels(_as_levels(done, hue), axis)
    joined = pd.api.types.is_numeric_dtype(frame[axis]) and not axis.endswith("seed")
    if row is None:
        fig, axes = _panels(metrics)
        panels = [(None, metric, ax) for metric, ax in zip(metrics, axes)]
    else:
        fig, panels = _level_panels(list(dict.fromkeys(done[row].dropna())), metrics)
    for level, metric, ax in panels:
        part = done if row is None else done[done[row] == level]
        sns.pointplot(
            data=part,
            x=axis,
            y=metric,
            hue=hue,
            palette=palette(done, hue),
            errorbar=t_errorbar,
            ax=ax,
            linestyle="-" if joined else "none",
            dodge=0.3 if hue and done[hue].nunique() > 1 else False,  # seaborn divides by the levels - 1
            capsize=0.1,
        )
        if not joined:
            ax.tick_params(axis="x", labelrotation=30)
        _log_if_spanning(ax, part[metric])
        ax.set_title(metric if row is None else f"{metric}, {row}={_level_text(level)}")
        ax.set_ylabel("")
    _one_legend_outside([ax for _, _, ax in panels])
    save(fig, path)


def _level_panels(levels: list, metrics: list[str]) -> tuple:
    """(level, metric, panel) for each level's metrics, each level starting a row of at most PANELS_PER_ROW
    panels; a single metric's levels side by side instead."""
    columns = min(len(metrics), PANELS_PER_ROW) if len(metrics) > 1 else min(len(levels), PANELS_PER_ROW)
    slots = []
    for level in levels:
        slots += [(level, metric) for metric in metrics]
        if len(metrics) > 1:
            slots += [None] * (-len(slots) % columns)  # the next level starts a row
    rows = -(-len(slots) // columns)
    fig, grid = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.6 * rows), squeeze=False)
    panels = []
    for slot, ax in itertools.zip_longest(slots, list(grid.flat)):
        if slot is None:
            ax.remove()
        else:
            panels.append((*slot, ax))
    return fig, panels


def _log_if_spanning(ax, values: pd.Series) -> None:
    """A log y axis for positive values that span more than an order of magnitude; for values of both signs
    whose largest magnitude is orders above the typical one (a diverged seed), a symmetric log axis."""
    values = values.dropna()
    if not len(values):
        return
    if values.min() > 0 and values.max() / values.min() >= 20:
        ax.set_yscale("log")
    elif values.min() <= 0 and values.abs().median() > 0 and values.abs().max() / values.abs().median() >= 100:
        ax.set_yscale("symlog", linthresh=float(values.abs().median()))


def _one_legend_outside(axes) -> None:
    """One legend right of the last panel, with every level any panel drew (a row may lack some)."""
    handles: dict = {}
    title = None
    for ax in axes:
        if ax.get_legend():
            title = title or ax.get_legend().get_title().get_text()
            for handle, label in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(label, handle)
            ax.get_legend().remove()
    if handles:
        axes[-1].legend(handles.values(), handles.keys(), title=title, loc="center left", bbox_to_anchor=(1, 0.5))


def heatmap(frame: pd.DataFrame, rows: str, columns: str, metric: str, path: Path) -> None:
    """The metric's mean over seeds per combination, annotated in the tables' number format."""
    done = frame[frame["status"] == "done"]
    table = done.pivot_table(index=rows, columns=columns, values=metric, aggfunc="mean", sort=False)
    labels = table.map(lambda v: "" if v != v else fmt(v))
    fig, ax = plt.subplots(figsize=(1.2 * len(table.columns) + 2, 0.6 * len(table) + 1.5))
    sns.heatmap(table, annot=labels, fmt="", cmap="viridis", ax=ax)
    ax.tick_params(axis="y", labelrotation=0)  # horizontal: long levels (inpaint:14) do not run together
    ax.set_title(f"{metric} (mean over seeds)")
    save(fig, path)


def training_curves(
    logs: pd.DataFrame, hue: str | None, path: Path, row: str | None = None, nonnegative: bool = False
) -> None:
    """Training loss terms per epoch and, where the cells hold out a validation split, its loss; one row of
    panels per level of `row` (a second varying axis: its levels are not pooled). `nonnegative`: every term
    is (the Bernoulli's cross-entropy or a squared error), so its band is cut at 0 like the KL's; a term spanning
    orders of magnitude on a log scale."""
    terms = [t for t in ("loss", "recon", "kl", "vq", "val_loss") if t in logs]
    logs = _as_levels(logs, hue)
    levels = list(dict.fromkeys(logs[row])) if row else [None]
    fig, grid = plt.subplots(len(levels), len(terms), figsize=(4.2 * len(terms), 3.6 * len(levels)), squeeze=False)
    marker = "o" if logs["epoch"].max() <= 40 else None  # hundreds of epochs: a line, not a row of dots
    for panels, level in zip(grid, levels):
        part = logs if row is None else logs[logs[row] == level]
        for ax, term in zip(panels, terms):
            never_negative = term in ("kl", "vq") or nonnegative  # a KL, the VQ-VAE's squared distances
            band = _nonnegative_errorbar if never_negative else t_errorbar
            sns.lineplot(
                data=part, x="epoch", y=term, hue=hue, palette=palette(logs, hue), errorbar=band, ax=ax, marker=marker
            )
            _log_if_spanning(ax, part[term])
            title = "validation loss per image" if term == "val_loss" else f"training {term} per image"
            ax.set_title(title if row is None else f"{title}\n{row}={_level_text(level)}")  # two lines: no overlap
            ax.xaxis.set_major_locator(_epoch_ticks())
    _one_legend_outside(list(grid.flat))
    save(fig, path)


def learning_curves(logs: pd.DataFrame, hue: str | None, metrics: list[str], published: dict, path: Path) -> None:
    """Test metrics recorded after every epoch (columns test_<metric>), with a published figure as a
    dashed line where there is one."""
    logs = _as_levels(logs, hue)
    fig, axes = _panels(metrics)
    for ax, metric in zip(axes, metrics):
        sns.lineplot(
            data=logs,
            x="epoch",
            y=f"test_{metric}",
            hue=hue,
            palette=palette(logs, hue),
            errorbar=t_errorbar,
            ax=ax,
            marker=".",
        )
        if metric in published:
            ax.axhline(published[metric], color="black", linestyle="--", linewidth=1, label="published")
        ax.set_title(f"test {metric} after each epoch")
        ax.set_ylabel(metric)
        ax.xaxis.set_major_locator(_epoch_ticks())
        ax.legend()
    _one_legend_outside(axes)
    save(fig, path)


def scatter_panels(panels: dict[str, tuple[np.ndarray, np.ndarray]], class_names, path: Path) -> None:
    """Side-by-side 2-D embeddings (t-SNE), points coloured by class."""
    fig, axes = _panels(list(panels), width=5.0)
    for ax, (title, (points, labels)) in zip(axes, panels.items()):
        names = np.asarray(class_names)[labels]
        sns.scatterplot(
            x=points[:, 0],
            y=points[:, 1],
            hue=names,
            hue_order=list(class_names),
            s=6,
            linewidth=0,
            ax=ax,
            palette="tab10",
            legend=ax is axes[-1],
        )
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
    if axes[-1].get_legend():
        sns.move_legend(axes[-1], "center left", bbox_to_anchor=(1, 0.5), markerscale=3)
    save(fig, path, vector=False)  # thousands of points: the PNG is the figure


def reliability(curves: dict[str, list[list[float]]], path: Path, colours: dict | None = None) -> None:
    """Reliability diagram of the generative classifier: per confidence bin, accuracy against mean
    confidence (the diagonal is calibration), one line per level; `curves`: level -> [[confidence, accuracy,
    images], ...] pooled over seeds."""
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
    for label, rows in curves.items():
        points = [(c, a, n) for c, a, n in rows if n]
        if not points:
            continue
        confidence, accuracy, images = zip(*points)
        (line,) = ax.plot(confidence, accuracy, label=label, color=(colours or {}).get(label))
        total = sum(images)  # marker area by the bin's share of the images: a bin of few images is a dot
        ax.scatter(confidence, accuracy, s=[6 + 300 * n / total for n in images], color=line.get_color(), zorder=3)
    ax.set(xlabel="confidence max_y p(y|x)", ylabel="accuracy", xlim=(0, 1.06), ylim=(0, 1.06))
    ax.set_aspect("equal")
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small")
    save(fig, path)

"""Which metric a report may compare along which axis.

Each metric declares, on its registered spec, the cell fields its value depends on by definition (every
pixel metric on the image size: a per-image sum, and a per-pixel error or an SSIM of the same images at
another resolution; a target sum on the task, a density on the data and the decoder family, the domain
instrument on the image size; `MetricSpec.depends_on`). Two levels of an axis that changes such a field
are not compared on that metric: the report says so and why, and compares the metric's normalised form
instead where one exists, was measured and does not depend on the field itself (per-pixel error across
data sets, bits/dim, nats per target pixel across tasks). Reconstructions through q(z|x,c) are no finding of
an image task at all: q sees the pixels the task hides, so they measure the autoencoder, not the completion.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from benchmark.metrics.dependence import CHANCE_WITHOUT_CONDITION as CHANCE
from benchmark.metrics.registry import metric_specs


@dataclass(frozen=True)
class Refusal:
    """`metric` is not compared along `axis`: `why`; `instead` is compared there in its place (or None)."""

    axis: str
    metric: str
    why: str
    instead: str | None = None

    def text(self) -> str:
        instead = f"; compared instead: **{self.instead}**" if self.instead else ""
        return f"**{self.metric}** is not compared along {self.axis}: {self.why}{instead}."


def dependence(metric: str, changed: tuple[str, ...], pooled: tuple[str, ...] = ()) -> str | None:
    """Why `metric` cannot be compared between cells that differ in the fields `changed`, or averaged over
    cells that differ in the fields `pooled` (the other varying axes), or None."""
    spec = metric_specs()[metric]
    for field, why in spec.depends_on:
        if field in changed:
            return f"{field} changes with it, and {why}" if field != changed[0] else why
        if field in pooled:
            return f"its mean would pool over {field}, and {why} (compare within each {field})"
    return None


def measured(frame: pd.DataFrame, metric: str, axis: str | None = None) -> bool:
    """Whether some done cell measured `metric` (with `axis`: cells at two of its levels at least)."""
    done = frame[frame["status"] == "done"]
    if metric not in done:
        return False
    if axis is None:
        return bool(done[metric].notna().any())
    return int((done.groupby(axis, sort=False)[metric].count() > 0).sum()) >= 2


def _dependency_fields() -> set[str]:
    return {field for spec in metric_specs().values() for field, _ in spec.depends_on} | {"reads_condition"}


def fields_changing_with(frame: pd.DataFrame, axis: str, along) -> tuple[str, ...]:
    """Fields that are no axis here but take other values at some level of `axis` than at another (e.g.
    whether the model reads its condition, along conditioning): a pair across those levels changes them."""
    done = frame[frame["status"] == "done"]
    found = []
    for field in sorted(_dependency_fields()):
        if field in done and field not in (axis, *along):
            per_level = done.groupby(axis, sort=False)[field].agg(lambda v: frozenset(v.dropna()))
            if per_level.nunique() > 1:
                found.append(field)
    return tuple(found)


def pooled_fields(frame: pd.DataFrame, changed: tuple[str, ...]) -> tuple[str, ...]:
    """The cell fields that vary among the done cells other than `changed`: a finding averages over them."""
    done = frame[frame["status"] == "done"]
    return tuple(
        f for f in sorted(_dependency_fields()) if f in done and f not in changed and done[f].nunique(dropna=False) > 1
    )


def metrics_along(
    frame: pd.DataFrame, axis: str, along: tuple[str, ...] | list[str], metrics: list[str]
) -> tuple[list[str], list[Refusal]]:
    """The metrics compared along `axis` (with the axes zipped to it, `along`): each of `metrics` whose value
    does not depend on a field they change or that the comparison pools over, else its normalised form where
    measured and comparable; and a Refusal for each metric left out."""
    changed = (axis, *along, *fields_changing_with(frame, axis, along))
    pooled = pooled_fields(frame, changed)
    compared, refused = [], []
    use = _condition_use(frame, axis)
    for metric in metrics:
        why = dependence(metric, changed, pooled)
        if why is None and use and metric_specs()[metric].chance_without_condition:
            why = use
        if why is None:
            compared.append(metric)
            continue
        instead = metric_specs()[metric].normalised
        usable = instead is not None and measured(frame, instead, axis) and dependence(instead, changed, pooled) is None
        refused.append(Refusal(axis, metric, why, instead if usable else None))
        if usable and instead not in compared and instead not in metrics:
            compared.append(instead)
    return compared, refused


def _condition_use(frame: pd.DataFrame, axis: str) -> str | None:
    """Why a metric of the condition's use (chance_without_condition) is not compared along `axis`: every
    cell ignores the condition, or a level holds cells that read it beside cells that ignore it (its mean
    would pool the two); None where each level's cells all read it or all ignore it (a finding either way).
    An image task's completions keep the given pixels: never at chance, no rule."""
    done = frame[frame["status"] == "done"]
    if "reads_condition" not in done or done.empty or hides_pixels(frame):
        return None
    reads = done["reads_condition"].map(lambda v: True if v is None or pd.isna(v) else bool(v))  # unknown: no rule
    if not reads.any():
        return f"no cell compared here reads the condition, and {CHANCE}"
    mixed = [level for level, part in reads.groupby(done[axis], sort=False) if part.nunique() > 1]
    if mixed:
        return (
            f"at {axis}={mixed[0]} some cells read the condition and some ignore it, so a mean would pool the two, "
            f"and {CHANCE} (compared within the levels of what decides it, e.g. prior)"
        )
    return None


def hides_pixels(frame: pd.DataFrame) -> bool:
    """Whether the done cells' condition is an image task (q then sees the pixels the task hides)."""
    done = frame[frame["status"] == "done"]
    return "task" in done and bool(done["task"].notna().any())


def finding_metrics(frame: pd.DataFrame, ranked: list[str]) -> tuple[list[str], list[str]]:
    """(the ranked metrics findings and comparisons are written on, the through-q metrics left out of them
    because the cells complete images: q sees the hidden pixels)."""
    if not hides_pixels(frame):
        return ranked, []
    through_q = [m for m in ranked if metric_specs()[m].through_q]
    return [m for m in ranked if m not in through_q], through_q


THROUGH_Q_NOTE = (
    "{names}: reconstructions through the recognition network q(z|x,c), which sees the pixels the task hides, "
    "so {they} the autoencoder, not the completion: in the tables, not among the findings or comparisons."
)


def through_q_text(names: list[str]) -> str:
    listed = ", ".join(f"`{n}`" for n in names)
    return THROUGH_Q_NOTE.format(names=listed, they="they measure" if len(names) > 1 else "it measures")

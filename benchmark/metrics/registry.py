"""The metric registry: every metric's facts in one place, registered beside the function computing it.

A metric group (a module of metrics/groups/) is one function that computes several metrics from a trained
cell, registered with a definition version and one `MetricSpec` per key it returns. Tables, figures,
comparisons, `bench status`, `bench reproduce` and the protocol section of reports all read the specs
from here; a group returning a key without a spec is a programming error that evaluation refuses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from benchmark.fileio import canonical_json
from benchmark.registry import Registry


@dataclass(frozen=True)
class MetricSpec:
    name: str
    definition: str  # one line, printed in every report's protocol section
    better: str | None = None  # "lower", "higher", or None for a quantity that is not ranked
    headline: bool = False  # a column of `bench status`, report tables, figures and comparisons
    tolerance: tuple[float, float] | None = None  # bench reproduce: |got - want| <= abs + rel * |want|, as (rel, abs)
    unit: str = ""
    # Comparability (report/comparability.py): the cell fields the value depends on by its definition, each
    # with why; levels of an axis that changes one are not compared on this metric, `normalised` instead.
    depends_on: tuple[tuple[str, str], ...] = ()
    # at chance by construction for a model that ignores the condition: compared between a model that reads it
    # and one that does not (a finding), never averaged over both nor compared among models that ignore it
    chance_without_condition: bool = False
    normalised: str | None = None  # the metric that removes some of the dependence (per pixel, per dimension)
    through_q: bool = False  # a reconstruction through q(z|x,c), which sees the pixels an image task hides
    eval_settings: tuple[str, ...] = ()  # evaluation settings the value depends on (FID's bias on n_samples)
    # a value read off the cell's other stored metrics (never computed by its group, so no cell goes stale)
    derive: Callable[[dict], float | None] | None = None

    def value(self, metrics: dict) -> float | None:
        """This metric's scalar value in a cell's stored metrics (None: not measured, or not a scalar)."""
        return self.derive(metrics) if self.derive else scalar_value(metrics.get(self.name))


@dataclass(frozen=True)
class MetricGroup:
    compute: Callable  # EvalContext -> {metric name: value}
    version: int  # bump when the group's definitions or computation change: cells measured before go stale
    specs: tuple[MetricSpec, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The metrics `compute` returns (a derived metric is read off them, not computed)."""
        return tuple(spec.name for spec in self.specs if spec.derive is None)


METRIC_GROUPS: Registry[MetricGroup] = Registry("metric group", "benchmark.metrics.groups")


def metric_group(name: str, version: int, *specs: MetricSpec) -> Callable:
    """Register the decorated function as metric group `name`, computing exactly `specs`."""

    def add(compute: Callable) -> Callable:
        METRIC_GROUPS.register(name)(MetricGroup(compute, version, specs))
        return compute

    return add


def metric_specs() -> dict[str, MetricSpec]:
    return {spec.name: spec for name in METRIC_GROUPS.names() for spec in METRIC_GROUPS[name].specs}


def headline_metrics() -> list[str]:
    return [name for name, spec in metric_specs().items() if spec.headline]


def group_versions() -> dict[str, int]:
    return {name: METRIC_GROUPS[name].version for name in METRIC_GROUPS.names()}


def protocol_version(eval_settings: dict, versions: dict[str, int]) -> str:
    """What a measurement depends on: the evaluation settings and each metric group's version."""
    payload = canonical_json({"eval": eval_settings, "groups": versions})
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def group_of(metric: str) -> str:
    for name in METRIC_GROUPS.names():
        if metric in (spec.name for spec in METRIC_GROUPS[name].specs):
            return name
    raise KeyError(metric)


def scalar_value(value) -> float | None:
    """A stored metric value as one number, or None (not measured, a list, a per-class mapping, a flag)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

"""One registry per pluggable axis: a name -> entry mapping with clear errors, and the registries of the
cell's axes themselves.

Each registry names its home, the module that registers the project's own entries, and imports it on its
first lookup. The schema (config.py) checks a cell's names against these registries at the bottom of the
package, without importing the layers above it; an entry registered anywhere else is there as soon as its
module has been imported.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from benchmark.errors import BenchError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, home: str | None = None):
        self.kind = kind
        self.home = home  # the module that registers the built-in entries, imported on first lookup
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        if self.home is not None and self.home not in sys.modules:
            importlib.import_module(self.home)  # the built-in entries first, whoever registers next

        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def _filled(self) -> dict[str, T]:
        if self.home is not None:
            module = importlib.import_module(self.home)  # once: later calls find it in sys.modules
            if getattr(module.__spec__, "_initializing", False):  # a lookup from inside its own import
                raise RuntimeError(f"the {self.kind} registry was queried while {self.home} is being imported")
        return self._entries

    def __getitem__(self, name: str) -> T:
        try:
            return self._filled()[name]
        except KeyError:
            raise BenchError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._filled()

    def names(self) -> list[str]:
        return list(self._filled())


# The cell's pluggable axes, keyed by the cell field that names an entry (config.py checks them).
DATASETS: Registry[Any] = Registry("data set", "benchmark.data.datasets")
CONDITIONS: Registry[Any] = Registry("condition", "benchmark.conditions")
IMAGE_TASKS: Registry[Any] = Registry("image task", "benchmark.conditions.image_tasks")
BACKBONES: Registry[Any] = Registry("backbone", "benchmark.models.backbones")
CONDITIONINGS: Registry[Any] = Registry("conditioning", "benchmark.models.conditioning")
PRIORS: Registry[Any] = Registry("prior", "benchmark.models.prior")
MODELS: Registry[Any] = Registry("model", "benchmark.models.family")
SCHEDULES: Registry[Any] = Registry("schedule", "benchmark.training.schedules")
CELL_FIELD_REGISTRIES: dict[str, Registry[Any]] = {
    "dataset": DATASETS,
    "condition": CONDITIONS,
    "backbone": BACKBONES,
    "conditioning": CONDITIONINGS,
    "prior": PRIORS,
    "model": MODELS,
    "schedule": SCHEDULES,
}

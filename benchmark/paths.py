"""Where data, caches and results live. Every location can be overridden."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir


def cache_dir() -> Path:
    """Derived artefacts (resized tensors, embeddings, classifiers, FID statistics)."""
    return Path(os.environ.get("BENCH_CACHE_DIR") or user_cache_dir("cvae-bench"))


def data_dir(explicit: str | Path | None = None) -> Path:
    """Raw data sets: --data-dir, else $BENCH_DATA_DIR, else <cache>/data."""
    if explicit:
        return Path(explicit)
    if os.environ.get("BENCH_DATA_DIR"):
        return Path(os.environ["BENCH_DATA_DIR"])
    return cache_dir() / "data"

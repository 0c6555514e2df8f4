"""`bench data check`: what each data set in a data directory holds, and whether it is intact."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmark.data.datasets import load_dataset
from benchmark.errors import BenchError
from benchmark.registry import DATASETS


@dataclass
class SplitReport:
    dataset: str
    split: str
    images: int | None = None
    shape: str = ""
    captions: int | None = None
    mean_pixel: float | None = None
    checksum: str = ""
    error: str = ""


def check_data_dir(root: Path) -> list[SplitReport]:
    """Every registered data set whose folder is in `root`: its files' checksums, then what it holds."""
    reports: list[SplitReport] = []
    for name in DATASETS.names():
        entry = DATASETS[name]
        if entry.folder is None or not (root / entry.folder).exists():
            continue
        reports += _measure(
            name,
            entry.check_size,
            root,
            lambda split, e=entry: e.checksums(root, split) if e.checksums else "not checked (none registered)",
        )
    return reports


def expected_folders() -> str:
    """The folders a data directory may hold, for a message naming them."""
    return ", ".join(f"{DATASETS[n].folder}/" for n in DATASETS.names() if DATASETS[n].folder)


def _measure(name: str, size: int, root: Path, checksums) -> list[SplitReport]:
    rows = [SplitReport(name, split, checksum=checksums(split)) for split in ("train", "test")]
    try:
        bundle = load_dataset(name, size, root)
    except BenchError as err:
        for row in rows:
            row.error = str(err)
        return rows
    for row in rows:
        split = getattr(bundle, row.split)
        row.images = len(split)
        row.shape = "x".join(str(d) for d in split.images.shape[1:])
        row.mean_pixel = split.images.double().mean().item() / 255.0
        if split.captions is not None:
            row.captions = sum(len(c) for c in split.captions)
    return rows

"""`bench data check`: what each data set in a data directory holds, and whether it is intact."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmark.data import coco, idx
from benchmark.data.datasets import load_dataset
from benchmark.errors import BenchError

COCO_CHECK_SIZE = 64  # COCO photos differ in size: they are measured after resizing to this


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


def _idx_checksums(source: idx.IdxSource, root: Path, split: str) -> str:
    states = []
    for name in source.files(split):
        path = root / source.folder / name
        if not path.exists():
            states.append(f"{name}: missing")
        elif not idx.checksum_ok(source, path):
            states.append(f"{name}: MISMATCH")
    return "; ".join(states) or "OK"


def _listed_checksums(root: Path) -> dict[str, str]:
    """The data directory's own SHA256SUMS (as in ../shared/data), if it has one."""
    sums = root / "SHA256SUMS"
    if not sums.exists():
        return {}
    pairs = (line.split(maxsplit=1) for line in sums.read_text().splitlines() if line.strip())
    return {name.strip().removeprefix("./"): digest for digest, name in pairs}


def _coco_checksums(root: Path, split: str) -> str:
    listed = _listed_checksums(root)
    folder = root / "coco-mini"
    files = [
        coco.annotation_file(folder, split),
        *sorted((folder / coco.COCO_SPLITS[split]).glob("*")),
    ]
    relevant = [f for f in files if str(f.relative_to(root)) in listed]
    if not relevant:
        return "not listed in SHA256SUMS"
    bad = [f.name for f in relevant if idx.sha256_of(f) != listed[str(f.relative_to(root))]]
    return f"MISMATCH: {', '.join(bad)}" if bad else f"OK ({len(relevant)} files)"


def check_data_dir(root: Path) -> list[SplitReport]:
    reports: list[SplitReport] = []
    sources = {"fashion_mnist": idx.FASHION_MNIST, "mnist": idx.MNIST}
    for name, source in sources.items():
        if not (root / source.folder).exists():
            continue
        reports += _measure(name, 28, root, lambda split, s=source: _idx_checksums(s, root, split))
    if (root / "coco-mini").exists():
        reports += _measure("coco", COCO_CHECK_SIZE, root, lambda split: _coco_checksums(root, split))
    return reports


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

"""COCO captions through pycocotools: RGB images resized and centre-cropped, all captions kept."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmark.data.images import resize_square
from benchmark.errors import BenchError
from benchmark.fileio import sha256_of

COCO_SPLITS = {"train": "train2017", "test": "val2017"}


def annotation_file(root: Path, split: str) -> Path:
    return root / "annotations" / f"captions_{COCO_SPLITS[split]}.json"


def read_coco_split(root: Path, split: str, size: int) -> tuple[torch.Tensor, list[list[str]]]:
    """Return (N, 3, size, size) uint8 images and each image's captions, in image-id order."""
    from pycocotools.coco import COCO

    ann_path = annotation_file(root, split)
    if not ann_path.exists():
        raise BenchError(f"{ann_path}: COCO caption annotations not found")
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        try:
            coco = COCO(str(ann_path))
        except Exception as err:
            raise BenchError(f"{ann_path}: not a readable COCO annotation file ({err})") from None
    image_dir = root / COCO_SPLITS[split]
    images, captions = [], []
    for image_id in sorted(coco.getImgIds()):
        info = coco.loadImgs(image_id)[0]
        images.append(_load_image(image_dir / info["file_name"], ann_path, size))
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        captions.append([ann["caption"].strip() for ann in sorted(anns, key=lambda a: a["id"])])
    if not images:
        raise BenchError(f"{ann_path}: no images listed")
    return torch.cat(images), captions


def _load_image(path: Path, ann_path: Path, size: int) -> torch.Tensor:
    if not path.exists():
        raise BenchError(f"{ann_path}: names image {path.name}, which is missing from {path.parent}")
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"))
    except OSError as err:
        raise BenchError(f"{path}: not a readable image ({err})") from None
    tensor = torch.from_numpy(array.copy()).permute(2, 0, 1).unsqueeze(0)
    return resize_square(tensor, size)


def _listed_checksums(root: Path) -> dict[str, str]:
    """The data directory's own SHA256SUMS (as in ../shared/data), if it has one."""
    sums = root / "SHA256SUMS"
    if not sums.exists():
        return {}
    pairs = (line.split(maxsplit=1) for line in sums.read_text().splitlines() if line.strip())
    return {name.strip().removeprefix("./"): digest for digest, name in pairs}


def checksums(root: Path, split: str) -> str:
    """`bench data check`: the split's files against the data directory's SHA256SUMS."""
    listed = _listed_checksums(root)
    folder = root / "coco-mini"
    files = [annotation_file(folder, split), *sorted((folder / COCO_SPLITS[split]).glob("*"))]
    relevant = [f for f in files if str(f.relative_to(root)) in listed]
    if not relevant:
        return "not listed in SHA256SUMS"
    bad = [f.name for f in relevant if sha256_of(f) != listed[str(f.relative_to(root))]]
    return f"MISMATCH: {', '.join(bad)}" if bad else f"OK ({len(relevant)} files)"

"""results/<cell id>/: one folder per cell, every file written atomically.

A cell is done exactly when metrics.json exists (it is written last); failed
when failed.json exists; a folder with neither, and no live lock, is a partial
cell left by a crash and is redone. `results/grids/<name>.json` lists a grid's cells.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import io
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

from benchmark.fileio import atomic_write, read_json, save_torch, write_json

CONFIG, LOG, METRICS, FAILED, CHECKPOINT, LOCK = (
    "config.json",
    "log.json",
    "metrics.json",
    "failed.json",
    "model.pt",
    ".lock",
)


class CellStatus(str, enum.Enum):
    DONE = "done"
    FAILED = "failed"
    PENDING = "pending"


class CellStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def cell_dir(self, cell_id: str) -> Path:
        return self.root / cell_id

    def status(self, cell_id: str) -> CellStatus:
        folder = self.cell_dir(cell_id)
        if (folder / METRICS).exists():
            return CellStatus.DONE
        if (folder / FAILED).exists():
            return CellStatus.FAILED
        return CellStatus.PENDING

    def read(self, cell_id: str, name: str):
        path = self.cell_dir(cell_id) / name
        return read_json(path) if path.exists() else None

    def record_grid(self, name: str, source: str, cells: list[dict], overrides: tuple[str, ...] = ()) -> None:
        record = {"name": name, "source": source, "overrides": list(overrides), "cells": cells}
        write_json(self.root / "grids" / f"{name}.json", record)

    def grid_record(self, name: str) -> dict | None:
        path = self.root / "grids" / f"{name}.json"
        return read_json(path) if path.exists() else None

    @contextlib.contextmanager
    def claim(self, cell_id: str) -> Iterator[bool]:
        """Hold the cell's lock for as long as it is written; False if another run holds it.

        flock is released by the kernel when its holder dies, so a kill -9 leaves no stale lock.
        """
        folder = self.cell_dir(cell_id)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / LOCK, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def begin(self, cell_id: str, resolved: dict) -> None:
        """Start (or restart) a claimed cell: drop whatever an earlier attempt left, write its config."""
        folder = self.cell_dir(cell_id)
        for entry in folder.iterdir():
            if entry.name == LOCK:
                continue
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        write_json(folder / CONFIG, resolved)

    def finish(self, cell_id: str, result) -> None:
        """Write a finished cell's files; metrics.json goes last, which marks the cell done."""
        folder = self.cell_dir(cell_id)
        config = read_json(folder / CONFIG)
        config["provenance"] = result.provenance
        write_json(folder / CONFIG, config)
        write_json(folder / LOG, result.log)
        for name, png in result.images.items():
            atomic_write(folder / f"{name}.png", lambda tmp, png=png: tmp.write_bytes(png))
        if result.state_dict is not None:
            save_torch(folder / CHECKPOINT, result.state_dict)
        write_json(folder / METRICS, result.metrics)

    def remeasure(self, cell_id: str, metrics: dict, images: dict[str, bytes]) -> None:
        """New metrics for a done cell (`bench evaluate`): the old metrics.json stays until the new one is whole."""
        folder = self.cell_dir(cell_id)
        for name, png in images.items():
            atomic_write(folder / f"{name}.png", lambda tmp, png=png: tmp.write_bytes(png))
        write_json(folder / METRICS, metrics)

    def fail(self, cell_id: str, reason: str, provenance: dict, log: list | None = None) -> None:
        folder = self.cell_dir(cell_id)
        if log:
            write_json(folder / LOG, log)
        write_json(folder / FAILED, {"reason": reason, "provenance": provenance})


DISPLAY_PIXELS = 112  # an image is shown at least this wide on screen: 28 px images at 4x, 64 px at 2x


def display_scale(image_size: int) -> int:
    """The integer upscaling that shows an image of this size at least DISPLAY_PIXELS wide."""
    return max(1, math.ceil(DISPLAY_PIXELS / image_size))


def upscaled_png(data: bytes, scale: int) -> bytes:
    """A PNG enlarged by an integer factor, nearest neighbour (every pixel a scale x scale block)."""
    if scale == 1:
        return data
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        big = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
        buffer = io.BytesIO()
        big.save(buffer, format="png")
    return buffer.getvalue()


def png_bytes(image) -> bytes:
    """A (C, H, W) float tensor in [0, 1] -> PNG bytes."""
    from torchvision.utils import save_image

    buffer = io.BytesIO()
    save_image(image, buffer, format="png")
    return buffer.getvalue()

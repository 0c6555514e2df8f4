"""results/<cell id>/: one folder per cell, every file written atomically.

A cell is done exactly when metrics.json exists (it is written last) and the cell's files are whole
(store/integrity.py: checksums written with them); damaged when they are not; failed when failed.json
exists; a folder with neither, and no live lock, is a partial cell left by a crash and is redone. A
damaged cell is redone too, its files first moved aside to `damaged/`, never deleted.
`results/grids/<name>.json` lists a grid's cells.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import shutil
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from benchmark.errors import BenchError
from benchmark.fileio import atomic_write, save_torch, write_json
from benchmark.store.integrity import (
    FILES_KEY,
    Damage,
    DamagedFile,
    check_listed_files,
    file_checksum,
    read_checked,
    sealed,
    without_meta,
)

CONFIG, LOG, METRICS, FAILED, CHECKPOINT, LOCK, RESUME = (
    "config.json",
    "log.json",
    "metrics.json",
    "failed.json",
    "model.pt",
    ".lock",
    "resume.pt",  # a cell's training state mid-way (training/resume.py); gone once the cell is done
)
SAMPLE_TIMING = "sample_timing.json"  # bench perf sample's wall-clock record: not a cell output, not checksummed
GRIDS, DAMAGED = "grids", "damaged"  # folders of the store that are not cells
REQUIRED_KEYS = {CONFIG: ("cell",), METRICS: ("protocol",), FAILED: ("reason",)}


class CellStatus(str, enum.Enum):
    DONE = "done"
    FAILED = "failed"
    PENDING = "pending"
    DAMAGED = "damaged"


class CellStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._checked: dict[str, tuple[tuple, Damage | None]] = {}  # cell id -> (files' stat, result)

    def cell_dir(self, cell_id: str) -> Path:
        return self.root / cell_id

    def cell_ids(self) -> list[str]:
        """Every cell folder in the store (whatever its status)."""
        if not self.root.is_dir():
            return []
        skip = {GRIDS, DAMAGED}
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name not in skip)

    def status(self, cell_id: str) -> CellStatus:
        folder = self.cell_dir(cell_id)
        if not (folder / METRICS).exists() and not (folder / FAILED).exists():
            return CellStatus.PENDING
        if self.damage(cell_id):
            return CellStatus.DAMAGED
        return CellStatus.DONE if (folder / METRICS).exists() else CellStatus.FAILED

    def damage(self, cell_id: str) -> Damage | None:
        """What is wrong with a done or failed cell's files (None: whole, or nothing to check yet).
        Remembered while the folder's files keep their size and modification time."""
        folder = self.cell_dir(cell_id)
        try:
            signature = tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir()))
        except FileNotFoundError:
            return None
        cached = self._checked.get(cell_id)
        if cached is None or cached[0] != signature:
            cached = (signature, _damage_of(folder))
            self._checked[cell_id] = cached
        return cached[1]

    def verified(self, cell_id: str) -> bool:
        """Whether a checksum vouches for the done cell's files (False: written before checksums existed)."""
        try:
            return FILES_KEY in read_checked(self.cell_dir(cell_id) / METRICS)[0]
        except (DamagedFile, FileNotFoundError):
            return False

    def read(self, cell_id: str, name: str):
        """A cell's JSON file, checked (None when it does not exist). A damaged file is a one-line error."""
        path = self.cell_dir(cell_id) / name
        if not path.exists():
            return None
        try:
            return without_meta(read_checked(path, REQUIRED_KEYS.get(name, ()), expect_list=name == LOG)[0])
        except DamagedFile as err:
            raise BenchError(f"{path}: damaged ({err.damage.reason}); `bench store check` lists the damage") from None

    def record_sample_timing(self, cell_id: str, timing: dict) -> None:
        """How fast a done cell's model samples on this machine (`bench perf sample`): a measurement beside the
        cell's files, replaced by the next one; not among the checksummed, bit-identical outputs."""
        write_json(self.cell_dir(cell_id) / SAMPLE_TIMING, sealed(timing))

    def record_grid(self, name: str, source: str, cells: list[dict], overrides: tuple[str, ...] = ()) -> None:
        record = {"name": name, "source": source, "overrides": list(overrides), "cells": cells}
        write_json(self.root / GRIDS / f"{name}.json", sealed(record))

    def grid_record(self, name: str) -> dict | None:
        path = self.root / GRIDS / f"{name}.json"
        if not path.exists():
            return None
        try:
            return without_meta(read_checked(path, ("name", "source", "cells"))[0])
        except DamagedFile as err:
            raise BenchError(
                f"{path}: damaged ({err.damage.reason}); `bench run --grid ...` records the grid again"
            ) from None

    def grid_names(self) -> list[str]:
        return sorted(p.stem for p in (self.root / GRIDS).glob("*.json"))

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

    def begin(self, cell_id: str, resolved: dict, keep_resume: bool = True) -> Path | None:
        """Start (or restart) a claimed cell: drop what a crashed, failed or forced attempt left but its saved
        training state (unless `keep_resume` is False), or move a damaged cell's files aside (returned:
        where to); then write its config."""
        moved = self._move_aside(cell_id) if self.status(cell_id) == CellStatus.DAMAGED else None
        self.clear(cell_id, keep_resume)
        write_json(self.cell_dir(cell_id) / CONFIG, sealed(resolved))
        return moved

    def clear(self, cell_id: str, keep_resume: bool = False) -> None:
        """Empty a claimed cell's folder but its lock (and its saved training state, if `keep_resume`)."""
        for entry in self.cell_dir(cell_id).iterdir():
            if entry.name == LOCK or (entry.name == RESUME and keep_resume):
                continue
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()

    def _move_aside(self, cell_id: str) -> Path:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        target = self.root / DAMAGED / f"{cell_id}-{stamp}"
        target.mkdir(parents=True)
        for entry in self.cell_dir(cell_id).iterdir():
            if entry.name != LOCK:
                entry.rename(target / entry.name)
        return target

    def finish(self, cell_id: str, result, keep_resume: bool = False) -> None:
        """Write a finished cell's files; metrics.json goes last, which marks the cell done, with the
        checksums of the files written before it; then drop its mid-way training state unless kept."""
        folder = self.cell_dir(cell_id)
        config = self.read(cell_id, CONFIG)
        config["provenance"] = result.provenance
        if result.training:
            config["training"] = result.training
        write_json(folder / CONFIG, sealed(config))
        write_json(folder / LOG, result.log)
        for name, png in result.images.items():
            atomic_write(folder / f"{name}.png", lambda tmp, png=png: tmp.write_bytes(png))
        if result.state_dict is not None:
            save_torch(folder / CHECKPOINT, result.state_dict)
        write_json(folder / METRICS, sealed({**result.metrics, FILES_KEY: _checksums(folder)}))
        if not keep_resume:
            (folder / RESUME).unlink(missing_ok=True)

    def remeasure(self, cell_id: str, metrics: dict, images: dict[str, bytes]) -> None:
        """New metrics for a done cell (`bench evaluate`): the old metrics.json stays until the new one is whole.
        The checksums of the files it does not rewrite are carried over; the new metrics are committed first
        without those of the images being redrawn, so a kill at any moment leaves a cell that checks."""
        folder = self.cell_dir(cell_id)
        old, _ = read_checked(folder / METRICS)
        metrics = without_meta(metrics)
        if FILES_KEY not in old:  # written before checksums: stays unverifiable
            for name, png in images.items():
                atomic_write(folder / f"{name}.png", lambda tmp, png=png: tmp.write_bytes(png))
            write_json(folder / METRICS, sealed(metrics))
            return
        redrawn = {f"{name}.png" for name in images}
        kept = {name: digest for name, digest in old[FILES_KEY].items() if name not in redrawn}
        write_json(folder / METRICS, sealed({**metrics, FILES_KEY: kept}))
        for name, png in images.items():
            atomic_write(folder / f"{name}.png", lambda tmp, png=png: tmp.write_bytes(png))
        new = {name: file_checksum(folder / name) for name in redrawn}
        write_json(folder / METRICS, sealed({**metrics, FILES_KEY: {**kept, **new}}))

    def restore(
        self, cell_id: str, config: dict, log: list | None, metrics: dict | None, failed: dict | None, timing=None
    ) -> None:
        """A cell's files from a published report's data (no checkpoint, no images), sealed as written here."""
        folder = self.cell_dir(cell_id)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / CONFIG, sealed(config))
        if timing is not None:
            self.record_sample_timing(cell_id, timing)
        if log is not None:
            write_json(folder / LOG, log)
        if failed is not None:
            write_json(folder / FAILED, sealed(failed))
        if metrics is not None:
            write_json(folder / METRICS, sealed({**metrics, FILES_KEY: _checksums(folder)}))

    def fail(self, cell_id: str, reason: str, provenance: dict, log: list | None = None) -> None:
        folder = self.cell_dir(cell_id)
        if log:
            write_json(folder / LOG, log)
        write_json(folder / FAILED, sealed({"reason": reason, "provenance": provenance}))


def _checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file of a cell but its lock, its mid-way training state, its sampling-speed record and
    metrics.json (which carries them)."""
    skipped = (LOCK, METRICS, RESUME, SAMPLE_TIMING)
    return {p.name: file_checksum(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name not in skipped}


def _damage_of(folder: Path) -> Damage | None:
    """The first problem with a done (or failed) cell's files, in the order a reader meets them."""
    if not (folder / METRICS).exists():
        try:
            read_checked(folder / FAILED, REQUIRED_KEYS[FAILED])
        except DamagedFile as err:
            return err.damage
        return None
    try:
        metrics, _ = read_checked(folder / METRICS, REQUIRED_KEYS[METRICS])
        if not (folder / CONFIG).exists():
            return Damage(CONFIG, "missing")
        read_checked(folder / CONFIG, REQUIRED_KEYS[CONFIG])
        if (folder / LOG).exists():
            read_checked(folder / LOG, expect_list=True)
    except DamagedFile as err:
        return err.damage
    return check_listed_files(folder, metrics.get(FILES_KEY, {}))

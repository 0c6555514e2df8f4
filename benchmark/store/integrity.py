"""Is a stored file whole? Checksums written with the files, and validation when they are read.

Every JSON mapping the store writes carries the sha256 of its own content under `_sha256`; a cell's
`metrics.json`, written last, also carries the sha256 of each file the cell had at that moment
(`_files`: config, log, checkpoint, images), so a truncated, edited or missing file of a done cell is found
when the cell is read. Files written before checksums existed are checked for what can be checked
(they parse, they have their keys) and counted as unverifiable.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.fileio import sha256_of as file_checksum

CHECKSUM_KEY = "_sha256"  # sha256 of the file's content without this key, in every JSON mapping written
FILES_KEY = "_files"  # in metrics.json: sha256 of the cell's other files when the cell was done
META_KEYS = (CHECKSUM_KEY, FILES_KEY)


@dataclass(frozen=True)
class Damage:
    """What is wrong with a stored cell: the file and why."""

    file: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


class DamagedFile(Exception):
    def __init__(self, damage: Damage):
        super().__init__(str(damage))
        self.damage = damage


def content_checksum(data: dict) -> str:
    payload = {k: v for k, v in data.items() if k != CHECKSUM_KEY}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, allow_nan=True).encode()).hexdigest()


def sealed(data: Any) -> Any:
    """A mapping with its own checksum added (other JSON values are stored as they are)."""
    if not isinstance(data, dict):
        return data
    return {**data, CHECKSUM_KEY: content_checksum(data)}


def read_checked(path: Path, required: tuple[str, ...] = (), expect_list: bool = False) -> tuple[Any, bool]:
    """A stored JSON file's content without its meta keys, and whether a checksum vouched for it.

    Raises DamagedFile naming what is wrong: not JSON (truncated), checksum mismatch (edited), wrong shape
    or a required key missing."""
    name = path.name
    try:
        data = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DamagedFile(Damage(name, f"not JSON ({err}): truncated or overwritten")) from None
    if expect_list:
        if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
            raise DamagedFile(Damage(name, "not a list of epoch records"))
        return data, False
    if not isinstance(data, dict):
        raise DamagedFile(Damage(name, f"not a JSON object (a {type(data).__name__})"))
    verified = CHECKSUM_KEY in data
    if verified and data[CHECKSUM_KEY] != content_checksum(data):
        raise DamagedFile(Damage(name, "checksum mismatch: the file was changed after it was written"))
    missing = [key for key in required if key not in data]
    if missing:
        raise DamagedFile(Damage(name, f"missing key {', '.join(map(repr, missing))}"))
    return data, verified


def without_meta(data: Any) -> Any:
    return {k: v for k, v in data.items() if k not in META_KEYS} if isinstance(data, dict) else data


def check_listed_files(folder: Path, listed: dict[str, str]) -> Damage | None:
    """The first file of `listed` (name -> sha256) that is missing or differs, if any."""
    for name, expected in sorted(listed.items()):
        path = folder / name
        if not path.is_file():
            return Damage(name, "missing (it was there when the cell was done)")
        if file_checksum(path) != expected:
            return Damage(name, "checksum mismatch: truncated or changed after the cell was done")
    return None

"""Published reports are never lost: written whole or not at all, and never replaced by one made from
fewer cells without being asked.

A report is `out/<grid>.md` plus its folder `out/<grid>/` (figures, CSV, `cells.jsonl`: the cells it
was made from, report/published_data.py). It is rendered into a temporary folder beside them and swapped
in; a crash leaves the old report or the new one. Before anything is rendered, `check_publishable`
refuses a grid with no done cell in the store (a mistyped `--results`) and a report that would drop
cells the published one has.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from benchmark.errors import BenchError
from benchmark.report.published_data import published_cells

_RENAME_EXCHANGE = 2  # renameat2(2): swap two paths atomically (Linux >= 3.15)


def check_publishable(name: str, done: set[str], store_root: Path, out: Path, force: bool) -> None:
    """One-line errors, before anything is written, for a report that would replace a published one badly."""
    if not done:
        raise BenchError(
            f"--results {store_root}: no cell of grid {name} is done there, so there is nothing to report "
            f"(is the store path right? `bench status --grid ... --results {store_root}`)"
        )
    dropped = published_cells(out / name) - done
    if dropped and not force:
        shown = ", ".join(sorted(dropped)[:5]) + (", ..." if len(dropped) > 5 else "")
        raise BenchError(
            f"{out / (name + '.md')}: the published report has {len(dropped)} done cell"
            f"{'s' * (len(dropped) != 1)} that {store_root} lacks ({shown}); rendering would drop them. "
            "Point --results at the store it was made from, or give --force to replace it"
        )


def publish(out: Path, name: str, render: Callable[[Path], None]) -> Path:
    """`render(folder)` writes folder/<name>.md and folder/<name>/; they replace out's only once whole."""
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".rendering-{name}-", dir=out))
    try:
        render(staging)
        _swap_folder(staging / name, out / name)
        os.replace(staging / f"{name}.md", out / f"{name}.md")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / f"{name}.md"


def _swap_folder(new: Path, target: Path) -> None:
    """Put `new` at `target`; the old `target` (if any) ends up at `new`'s path, to be removed with it."""
    if not target.exists():
        os.rename(new, target)
        return
    if not _exchange(new, target):  # no renameat2 here: two renames, with a window of microseconds between
        aside = new.with_name(new.name + ".old")
        os.rename(target, aside)
        os.rename(new, target)


def _exchange(a: Path, b: Path) -> bool:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if not hasattr(libc, "renameat2"):
        return False
    at_fdcwd = -100
    return libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0

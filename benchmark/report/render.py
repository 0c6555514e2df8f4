"""Assemble one grid's markdown report, its CSV and its figures, and its lines of the findings index."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from benchmark.fileio import write_text
from benchmark.metrics.protocol import EvalConfig
from benchmark.metrics.registry import metric_specs
from benchmark.report.comparability import finding_metrics
from benchmark.report.context import SECTIONS, Report, overridden_text, sample_count
from benchmark.report.frame import GridCells, cells_frame, epoch_logs, long_frame, present_metrics, read_cells
from benchmark.report.index import scale_text, write_overview, write_question
from benchmark.report.publish import publish
from benchmark.report.published_data import is_legacy, store_from_legacy, store_from_published, write_cells_file
from benchmark.report.published_section import published_rows
from benchmark.report.sections import findings_within, levels_of, read_label_information
from benchmark.report.stats import answer_sentence, comparisons, family_text, findings
from benchmark.store import CellStore

INDEX_SAMPLE_COUNT = EvalConfig().n_samples  # the findings index shows FIDs from this many samples only


def render_report(
    store: CellStore, grid: GridCells, out: Path, data_dir=None, scale_checks: tuple[CellStore, ...] = ()
) -> Path:
    """out/<grid>.md and its folder out/<grid>/, written whole or not at all: rendered into a temporary
    folder beside them and swapped in (report/publish.py). `scale_checks`: other stores holding some of
    these cells at another scale (epochs, images)."""
    published = out / grid.name
    return publish(out, grid.name, lambda folder: _render_into(store, grid, folder, data_dir, scale_checks, published))


def render_from_published(grid_file: Path, out: Path) -> Path:
    """Render a published report again from the data published beside it (no store, no training); a report
    published before it carried its data, from its metrics.csv (published_data.store_from_legacy)."""
    import tempfile

    from benchmark.grid import load_grid
    from benchmark.report.frame import from_grid_file

    name = load_grid(grid_file).name
    with tempfile.TemporaryDirectory(prefix=f"published-{name}-") as root:
        if is_legacy(out / name):
            store = store_from_legacy(out / name, out / f"{name}.md", grid_file, Path(root))
        else:
            store = store_from_published(out / name, Path(root))
        return render_report(store, from_grid_file(store, grid_file), out)


def _render_into(store: CellStore, grid: GridCells, out: Path, data_dir, scale_checks, published: Path) -> None:
    """`published`: the report's folder as published, whose images are kept where the store has none (a
    store made from the report's own data holds no checkpoints and no images)."""
    files = read_cells(store, grid)
    frame = cells_frame(store, grid, files)
    assets = out / grid.name
    assets.mkdir(parents=True)
    write_cells_file(files, grid.record(), assets)
    metrics = present_metrics(frame)
    long_frame(frame, grid.axes).to_csv(assets / "metrics.csv", index=False, float_format="%.10g")
    ranked, through_q = finding_metrics(frame, [m for m in metrics if metric_specs()[m].better])
    found = comparisons(frame, grid.axes, ranked)
    logs = epoch_logs(files, frame, grid.axes)
    report = Report(
        store, grid, files, frame, metrics, ranked, through_q, found, logs, assets, data_dir, published, scale_checks
    )
    sections = [SECTIONS[name](report) for name in SECTIONS.names()]
    path = out / f"{grid.name}.md"
    write_overview(assets, _overview(frame, grid, path.name))
    question = grid.spec.question
    if question and ranked:
        answers, answer = _answers(frame, found, grid.axes, ranked, grid)
        write_question(assets, question, answer, answers, _index_scale(frame, grid), path.name, grid.spec.beyond_cpu)
    write_text(path, "\n".join(s for s in sections if s))


def _answers(frame: pd.DataFrame, found, axes: list[str], ranked: list[str], grid: GridCells) -> tuple[list[str], str]:
    """The question's lines of the findings index: its axis's findings on its metrics (Holm over every
    comparison of the question's metrics together when it asks `holm: across_metrics`), and the answer they
    add up to in one sentence. A metric whose value depends on the sample count is left out unless measured
    at the count every published report uses."""
    question = grid.spec.question
    asked = [m for m in question.metrics if m in ranked]
    family = "all" if question.holm == "across_metrics" else "metric"
    count = sample_count(frame) or INDEX_SAMPLE_COUNT
    off = [m for m in asked if "n_samples" in metric_specs()[m].eval_settings and count != INDEX_SAMPLE_COUNT]
    asked = [m for m in asked if m not in off]
    if family == "all":
        found = comparisons(frame, axes, asked, family="all")
    sentences = [answer_sentence(frame, found, axes, asked, question.axis)]
    for axis in grid.spec.findings_by:  # the question asked again at each level, each its own Holm family
        for level, part, rest in levels_of(frame, axes, axis):
            inner = answer_sentence(part, comparisons(part, rest, asked, family), rest, asked, question.axis)
            sentences.append(f"Within {axis}={level}: {inner}" if inner else "")
    answer = " ".join(s for s in sentences if s)
    answers = [read_label_information(frame, line) for line in findings(frame, found, axes, asked, question.axis)]
    for axis, level, inner in findings_within(frame, axes, asked, grid.spec.findings_by, question.axis, family):
        answers += [f"Within {axis}={level}: {line}" for line in inner]  # each with its own level's caveat
    if family == "all":
        answers.append(family_text(found, "all"))
    answers += [
        f"**{m}** from {count:,} samples: not in this index, whose {m} figures all come from "
        f"{INDEX_SAMPLE_COUNT:,} (it is biased in the sample count); see the report."
        for m in off
    ]
    return answers, answer


def _overview(frame: pd.DataFrame, grid: GridCells, report: str) -> dict:
    """What the README's list of published results says of this report, from its own numbers."""
    title = grid.spec.question.text if grid.spec.question else _first_sentence(grid.spec.description)
    done = frame[frame["status"] == "done"]
    trained = done[done["converged"].notna()]
    converged = f"{int(trained['converged'].astype(bool).sum())} of {len(done)} cells converged" if len(trained) else ""
    return {
        "report": report,
        "title": title,
        "scale": _index_scale(frame, grid),
        "cells": len(done),
        "cell_minutes": round(float(done["wall_seconds"].sum()) / 60) if done["wall_seconds"].notna().any() else None,
        "converged": converged,
        "published": published_rows(frame, grid.spec.published, grid.axes) if grid.spec.published else [],
        "pipeline_check": grid.spec.pipeline_check,
    }


def _first_sentence(text: str) -> str:
    """'How far ...?' or 'A published likelihood reproduced.': up to the first sentence end or colon."""
    import re

    head = re.split(r"(?<=[.?!])\s|:\s", text.strip(), maxsplit=1)[0]
    return head if head.endswith(("?", "!", ".")) else head + "."


def _index_scale(frame: pd.DataFrame, grid: GridCells) -> str:
    count = sample_count(frame)
    drawn = f", {count:,} generated samples per cell" if count else ""
    return scale_text(frame) + drawn + overridden_text(grid) + _coverage_text(frame, grid.axes)


def _coverage_text(frame: pd.DataFrame, axes: list[str]) -> str:
    """A grid published before all its cells ran says so, and names the levels that have no done cell."""
    done = frame["status"] == "done"
    if done.all():
        return ""
    missing = [
        f"{axis}={level}"
        for axis in axes
        for level, cells in frame.groupby(axis, sort=False)
        if not done[cells.index].any()
    ]
    unrun = f" (none done at {', '.join(missing)})" if missing else ""
    return f"; partial: {int(done.sum())} of {len(frame)} cells done{unrun}"

"""Assemble one grid's markdown report, its CSV and its figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.drawing import display_scale, interpolation_png, upscaled_png
from benchmark.fileio import atomic_write, write_text
from benchmark.metrics.protocol import EvalConfig
from benchmark.metrics.registry import metric_specs
from benchmark.registry import Registry
from benchmark.report import figures, latents
from benchmark.report.comparability import finding_metrics, metrics_along, through_q_text
from benchmark.report.frame import (
    CellFiles,
    GridCells,
    cells_frame,
    epoch_logs,
    long_frame,
    present_metrics,
    read_cells,
)
from benchmark.report.index import scale_text, write_overview, write_question
from benchmark.report.publish import publish
from benchmark.report.published_data import (
    LEGACY_NOTE,
    is_legacy,
    store_from_legacy,
    store_from_published,
    write_cells_file,
)
from benchmark.report.stats import (
    ALPHA,
    MIN_SEEDS,
    along_text,
    at_place_of,
    claim_verdict,
    compared_axes,
    comparisons,
    family_text,
    findings,
    fmt,
    interval_text,
    sentence,
    span_text,
    summary_table,
    t_interval,
)
from benchmark.report.summary import latex_table, summary_frame
from benchmark.store import CellStore
from benchmark.training.selection import CONVERGENCE_TOLERANCE
from benchmark.training.trainer import load_stored_cell

INDEX_SAMPLE_COUNT = EvalConfig().n_samples  # the findings index shows FIDs from this many samples only
# The axis whose levels are conditioning mechanisms (models/conditioning.py): figures colour by it, the image
# grids of a large grid keep each of its levels, latent figures are drawn per level (t-SNE: none vs concat).
MECHANISM_AXIS = "conditioning"


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


@dataclass
class Report:
    """What the sections of one report read, computed once: the grid, its cells' files (read from the store
    once), their frame, the paired comparisons; the store itself only for images and checkpoints."""

    store: CellStore
    grid: GridCells
    files: dict[str, CellFiles]
    frame: pd.DataFrame
    metrics: list[str]  # the headline metrics some done cell holds
    ranked: list[str]  # those findings are written on
    through_q: list[str]  # ranked metrics measured through q(z|x,c) of an image task (report/comparability.py)
    found: list  # every paired comparison, Holm-corrected once for the report
    logs: pd.DataFrame  # every done cell's epoch records
    assets: Path  # the report's folder being written
    data_dir: Path | None
    published: Path  # the report's folder as published, whose images are kept where the store has none
    scale_checks: tuple[CellStore, ...]

    @property
    def axes(self) -> list[str]:
        return self.grid.axes


Section = Callable[[Report], str]
# A report's sections in the order they appear; each returns its markdown, or "" where it has nothing to say.
# A new section is one registration here (or anywhere, with SECTIONS.register) and its function.
SECTIONS: Registry[Section] = Registry("report section")


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
        write_question(
            assets, question, _answers(frame, found, grid.axes, ranked, grid), _index_scale(frame, grid), path.name
        )
    write_text(path, "\n".join(s for s in sections if s))


def _with_metrics(section: Section) -> Section:
    """A section about the metrics' values: nothing where no done cell holds a headline metric."""
    return lambda report: section(report) if report.metrics else ""


def _register_sections() -> None:
    def question_section(r: Report) -> str:
        question = r.grid.spec.question
        return _summary_section(r.frame, r.found, r.axes, question, r.ranked, r.assets) if question and r.ranked else ""

    def findings_section(r: Report) -> str:
        if not r.ranked:
            return ""
        spec = r.grid.spec
        return _findings_section(r.frame, r.found, r.axes, r.ranked, spec.findings_by, spec.question, r.through_q)

    def published_section(r: Report) -> str:
        published = r.grid.spec.published
        return _published_section(r.frame, r.logs, published, r.axes, r.assets) if published else ""

    def scale_sections(r: Report) -> str:
        parts = [
            _scale_section(r.frame, other, r.grid, r.ranked, r.assets, f"scale_check_{i + 1}")
            for i, other in enumerate(r.scale_checks)
        ]
        return "\n".join(part for part in parts if part)

    entries: dict[str, Section] = {
        "title": lambda r: f"# Report: {r.grid.name}\n",
        "left out": lambda r: _left_out(r.frame),
        "legacy": lambda r: LEGACY_NOTE.format(name=r.grid.name) if _legacy(r.files, r.frame) else "",
        "caveats": lambda r: _caveats(r.files, r.frame),
        "description": lambda r: f"{r.grid.spec.description.strip()}\n",
        "overrides": lambda r: _overrides_line(r.grid),
        "scale": lambda r: _scale_line(r.frame),
        "training": lambda r: _training_line(r.frame),
        "at a glance": question_section,
        "findings": findings_section,
        "claims": lambda r: _claims_section(r.found, r.grid.spec.claims) if r.grid.spec.claims else "",
        "matching": lambda r: _matching_section(r.grid, r.frame) if r.grid.spec.match_params else "",
        "cells": lambda r: _status_section(r.frame),
        "protocol": lambda r: _protocol_section(r.files, r.frame),
        "provenance": lambda r: _provenance_section(r.files, r.frame),
        "results": _with_metrics(lambda r: _table_section(r.frame, r.axes, r.metrics, r.assets)),
        "reference rows": _with_metrics(lambda r: _reference_section(r.frame, r.assets)),
        "per class": _with_metrics(lambda r: _per_class_section(r.files, r.frame, r.axes, r.assets)),
        "published": _with_metrics(published_section),
        "comparisons": _with_metrics(lambda r: _comparison_section(r.frame, r.found, r.axes, r.ranked)),
        "scale checks": _with_metrics(scale_sections),
        "figures": _with_metrics(_figure_section),
        "data": lambda r: (
            f"Every cell's metrics in long format: [{r.grid.name}/metrics.csv]({r.grid.name}/metrics.csv)\n"
        ),
    }
    for name, section in entries.items():
        SECTIONS.register(name)(section)


def _left_out(frame: pd.DataFrame) -> str:
    """Damaged cells (a file truncated, edited or missing) are not read: said before any number."""
    damaged = frame[frame["status"] == "damaged"]
    if damaged.empty:
        return ""
    which = "; ".join(f"`{r.cell}` ({r.reason.removeprefix('damaged: ')})" for r in damaged.itertuples())
    return (
        f"**Left out:** {len(damaged)} damaged cell{'s' * (len(damaged) != 1)}, whose stored files failed their "
        f"checks: {which}. `bench run` redoes them; `bench store check` lists every damaged file.\n"
    )


def _markdown(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


def _table(table: pd.DataFrame, assets: Path, name: str, caption: str) -> str:
    """A report table: markdown in the report and the same table as booktabs LaTeX beside it, linked."""
    write_text(assets / f"{name}.tex", latex_table(table, caption))
    return _markdown(table) + f"\nAs LaTeX: [{assets.name}/{name}.tex]({assets.name}/{name}.tex).\n"


def _overridden(grid: GridCells) -> str:
    return f"; run with {_override_options(grid)}" if grid.overrides else ""


def _override_options(grid: GridCells) -> str:
    return "`" + " ".join(f"--override {assignment}" for assignment in grid.overrides) + "`"


def _overrides_line(grid: GridCells) -> str:
    """A run that changed every cell on top of the file (`bench run --override`): the description above is the
    file's, the cells are not exactly what it says."""
    if not grid.overrides:
        return ""
    return (
        f"**Run with** {_override_options(grid)}: these settings of every cell differ from the grid file's "
        "(the description above is the file's).\n"
    )


def _scale_line(frame: pd.DataFrame) -> str:
    """What the done cells were trained on, and what they cost: summed cell time and the run's wall span."""
    done = frame[frame["status"] == "done"]
    if done.empty:
        return ""
    cost = f"{len(done)} cells, {done['wall_seconds'].sum() / 60:,.0f} min of cell time (training and evaluation)"
    if done["start"].notna().any() and done["end"].notna().any():
        wall = (pd.Timestamp(done["end"].max()) - pd.Timestamp(done["start"].min())).total_seconds() / 60
        cost += f", first start to last end {wall:,.0f} min"
    return f"**Scale**: {scale_text(frame)}. **Cost**: {cost}.\n"


def _training_line(frame: pd.DataFrame) -> str:
    """How the cells were trained and whether they converged (cells that record a training summary)."""
    done = frame[(frame["status"] == "done") & frame["converged"].notna()]
    if done.empty:
        return ""
    converged = int(done["converged"].astype(bool).sum())
    return (
        f"**Training**: {converged} of {len(done)} cells converged (their loss improved by at most "
        f"{CONVERGENCE_TOLERANCE:.1%} over their last epochs, or early stopping ended them); epochs run "
        f"{span_text(done['epochs_run'])}, epoch measured {span_text(done['selected_epoch'])}.\n"
    )


def _findings_section(
    frame: pd.DataFrame, found, axes: list[str], ranked: list[str], by: tuple[str, ...], question, through_q=()
):
    """Findings over the whole grid, then within each level of the `by` axes (for the question's axis only,
    when the grid names a question), each level with its own Holm family."""
    lines = [_read_label_information(frame, line) for line in findings(frame, found, axes, ranked)]
    if not lines:
        return ""
    parts = [
        "## Findings\n",
        "Written from the paired comparisons below: for each axis and headline metric, the level with the "
        "best mean over every other axis's levels and seeds, compared with every other level of the axis: "
        f"the levels it beats after Holm's correction (family-wise error {ALPHA}), those it is not "
        "significantly different from with the smallest difference each test would have detected with 80% "
        f"power (at the observed spread, level {ALPHA} / family size, the threshold of Holm's first step) and "
        "the seeds the observed difference would need. d = Cohen's d_z of the paired differences with its 95% "
        f"interval (noncentral t); no test from fewer than {MIN_SEEDS} seeds. {family_text(found)}\n",
        *[
            part
            for part in (_one_seed_line(frame), through_q_text(list(through_q)) + "\n" if through_q else "")
            if part
        ],
        *[f"- {line}" for line in lines],
        "",
    ]
    for axis, level, inner in _findings_within(frame, axes, ranked, by, question.axis if question else None):
        parts += [f"### Within {axis}={level}\n", "Holm's correction within these cells' comparisons.\n"]
        parts += [f"- {line}" for line in inner] + [""]
    return "\n".join(parts)


def _findings_within(frame: pd.DataFrame, axes: list[str], ranked: list[str], by, only_axis, family="metric"):
    """(by-axis, level, findings) for each level of each `by` axis, each level its own Holm family."""
    for axis in by:
        for level in dict.fromkeys(frame[axis]):
            part, rest = frame[frame[axis] == level], [a for a in axes if a != axis]
            inner = findings(part, comparisons(part, rest, ranked, family), rest, ranked, only_axis)
            if inner:
                yield axis, level, [_read_label_information(part, line) for line in inner]


def _answers(frame: pd.DataFrame, found, axes: list[str], ranked: list[str], grid: GridCells) -> list[str]:
    """The question's lines of the findings index: its axis's findings on its metrics (Holm over every
    comparison of the question's metrics together when it asks `holm: across_metrics`). A metric whose value
    depends on the sample count is left out unless measured at the count every published report uses."""
    question = grid.spec.question
    asked = [m for m in question.metrics if m in ranked]
    family = "all" if question.holm == "across_metrics" else "metric"
    count = _sample_count(frame) or INDEX_SAMPLE_COUNT
    off = [m for m in asked if "n_samples" in metric_specs()[m].eval_settings and count != INDEX_SAMPLE_COUNT]
    asked = [m for m in asked if m not in off]
    if family == "all":
        found = comparisons(frame, axes, asked, family="all")
    answers = findings(frame, found, axes, asked, question.axis)
    for axis, level, inner in _findings_within(frame, axes, asked, grid.spec.findings_by, question.axis, family):
        answers += [f"Within {axis}={level}: {line}" for line in inner]
    answers = [_read_label_information(frame, line) for line in answers]
    if family == "all":
        answers.append(family_text(found, "all"))
    return answers + [
        f"**{m}** from {count:,} samples: not in this index, whose {m} figures all come from "
        f"{INDEX_SAMPLE_COUNT:,} (it is biased in the sample count); see the report."
        for m in off
    ]


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
        "published": _published_rows(frame, grid.spec.published, grid.axes) if grid.spec.published else [],
    }


def _first_sentence(text: str) -> str:
    """'How far ...?' or 'A published likelihood reproduced.': up to the first sentence end or colon."""
    import re

    head = re.split(r"(?<=[.?!])\s|:\s", text.strip(), maxsplit=1)[0]
    return head if head.endswith(("?", "!", ".")) else head + "."


def _published_rows(frame: pd.DataFrame, published: dict, axes: list[str]) -> list[dict]:
    """The published figures beside this report's: one row per group of cells and metric."""
    done = frame[frame["status"] == "done"]
    groups = []
    for row in published.get("rows") or [{"where": published.get("where", {}), "metrics": published["metrics"]}]:
        part = done
        for field, value in row["where"].items():
            part = part[part[field] == value]
        varying = [a for a in axes if a != "seed" and part[a].nunique() > 1] if "rows" not in published else []
        splits = list(part.groupby(varying[0], sort=False)) if varying else [(None, part)]
        for key, cells in splits:
            label = ", ".join(f"{k}={v}" for k, v in row["where"].items())
            label = ", ".join(x for x in (label, f"{varying[0]}={key}" if varying else "") if x) or "all cells"
            groups += [(label, metric, value, cells) for metric, value in row["metrics"].items()]
    rows = []
    for label, metric, value, cells in groups:
        here, difference = _against(cells, metric, value)
        rows.append({"cells": label, "metric": metric, "published": fmt(value), "here": here, "difference": difference})
    return rows


def _sample_count(frame: pd.DataFrame) -> int | None:
    """The done cells' eval.n_samples (one per grid: the grid's eval settings), None if none recorded it."""
    samples = frame.loc[frame["status"] == "done", "n_samples"].dropna()
    return int(samples.iloc[0]) if len(samples) else None


def _index_scale(frame: pd.DataFrame, grid: GridCells) -> str:
    count = _sample_count(frame)
    drawn = f", {count:,} generated samples per cell" if count else ""
    return scale_text(frame) + drawn + _overridden(grid)


def _read_label_information(frame: pd.DataFrame, line: str) -> str:
    """A finding on label_information, with how to read it where some cell's value is below 0: that is the
    generative classifier's miscalibration, not the label going unused."""
    done = frame[frame["status"] == "done"]
    if (
        "**label_information**" not in line
        or "label_information" not in done
        or not (done["label_information"] < 0).any()
    ):
        return line
    worst = done["label_information"].min()
    ece = done["generative_ece"].max() if "generative_ece" in done and done["generative_ece"].notna().any() else None
    calibration = f", generative_ece up to {fmt(ece)}" if ece is not None else ""
    return (
        f"{line} Read with care: label_information is ln K minus the log-loss of the model's generative "
        f"classifier p(y|x) on the real test pairs; a value below 0 (here down to {fmt(worst)}{calibration}) says "
        "that classifier's log-loss exceeds a uniform guess's (it is confidently wrong on some images, a "
        "matter of calibration), not that the label goes unused: generative_accuracy says how often the label "
        "is read right."
    )


def _one_seed_line(frame: pd.DataFrame) -> str:
    done = frame[frame["status"] == "done"]
    seeds = done["seed"].nunique() if "seed" in done else 1
    if seeds >= MIN_SEEDS:
        return ""
    return (
        f"**{seeds} seed{'s' * (seeds != 1)}**: no difference here is tested (a test needs pairs from at least "
        f"{MIN_SEEDS} seeds). What this grid shows instead: the best mean and the size of each difference, "
        "which a run with more seeds must confirm before it is a finding.\n"
    )


def _claims_section(found, claims) -> str:
    lines = ["## Published claims, checked\n"]
    for claim in claims:
        pair = {claim.better, claim.worse}
        for metric in claim.metrics:
            match = [c for c in found if (c.axis, c.metric) == (claim.axis, metric) and {c.a, c.b} == pair]
            lines.append(
                f"- {claim.source.strip()}: {claim.axis}={claim.better} beats {claim.worse} on {metric}. "
                + claim_verdict(match[0] if match else None, claim.better)
            )
    return "\n".join(lines) + "\n"


def _matching_section(grid: GridCells, frame: pd.DataFrame) -> str:
    from benchmark.grid.matching import MATCH_TOLERANCE

    done = frame[frame["status"] == "done"]
    if "parameters" not in done or done["parameters"].isna().all():
        return ""
    groups = [a for a in grid.axes if a not in ("seed", MECHANISM_AXIS)]

    def spread(counts: pd.Series) -> float:
        return (counts.max() - counts.min()) / counts.max()

    worst = done.groupby(groups)["parameters"].agg(spread).max() if groups else spread(done["parameters"])
    return (
        "## Parameter matching\n\n"
        "This grid sets `match_params`: within each combination of the other axes, every conditioning mechanism's "
        "hidden widths (MLP hidden layers, conv channels) were scaled by the cell field `width_scale` until its "
        f"parameter count came within {MATCH_TOLERANCE:.0%} of the largest mechanism's, which keeps its own "
        f"widths. Largest measured spread within a group: {worst:.2%}.\n"
    )


def _status_section(frame: pd.DataFrame) -> str:
    counts = frame["status"].value_counts()
    shown = ("done", "failed", "pending") + (("damaged",) if counts.get("damaged") else ())
    lines = [
        "## Cells\n",
        ", ".join(f"{counts.get(s, 0)} {s}" for s in shown) + ".\n",
    ]
    for status in shown[1:]:
        part = frame[frame["status"] == status]
        if len(part):
            lines.append(f"**{status.capitalize()} cells** (not in the tables below):\n")
            lines += [f"- `{r.cell}` {r.reason}".rstrip() for r in part.itertuples()]
            lines.append("")
    return "\n".join(lines)


def _first_done(files: dict[str, CellFiles], frame: pd.DataFrame) -> CellFiles | None:
    done = frame[frame["status"] == "done"]
    return files[done["cell"].iloc[0]] if len(done) else None


def _first_metrics(files: dict[str, CellFiles], frame: pd.DataFrame) -> dict | None:
    first = _first_done(files, frame)
    return first.metrics if first else None


def _legacy(files: dict[str, CellFiles], frame: pd.DataFrame) -> bool:
    metrics = _first_metrics(files, frame)
    return bool(metrics and metrics["protocol"].get("legacy"))


def _caveats(files: dict[str, CellFiles], frame: pd.DataFrame) -> str:
    """What the cells' protocol warns about (an untrained text encoder), first, before any number is read."""
    metrics = _first_metrics(files, frame)
    notes = metrics["protocol"].get("conditions", {}).get("warnings", []) if metrics else []
    return "".join(f"**Caveat:** {note}\n" for note in notes)


def _protocol_section(files: dict[str, CellFiles], frame: pd.DataFrame) -> str:
    metrics = _first_metrics(files, frame)
    if not metrics:
        return ""
    protocol = metrics["protocol"]
    settings = ", ".join(f"{k} = {v}" for k, v in protocol["eval"].items())
    lines = ["## Evaluation protocol\n", f"Settings: {settings}.\n"]
    if "domain_classifier" in protocol:
        classifier = protocol["domain_classifier"]
        lines.append(
            f"Domain classifier `{classifier['key']}` (test accuracy {classifier['test_accuracy']:.4f}) "
            "gives the features of `fid_domain` / `kid_domain` and the predictions of `cond_acc`.\n"
        )
    for what, used in (
        ("evaluation protocols", _used(files, frame, lambda p: p.get("version", "before protocol versions"))),
        ("domain classifiers", _used(files, frame, lambda p: p.get("domain_classifier", {}).get("key"))),
    ):
        if len(used) > 1:
            which = "; ".join(f"`{key}` by {len(cells)} cells" for key, cells in sorted(used.items()))
            lines.append(
                f"**Warning:** the cells of this report were measured under {len(used)} different {what} "
                f"({which}): numbers from different ones are not comparable. Measure them again under one "
                "with `bench evaluate --grid ...`.\n"
            )
    for key in ("likelihood", "label"):
        if key in protocol:
            lines.append(f"{key.capitalize()}: {protocol[key]}.\n")
    measured, unavailable = _measured_metrics(files, frame)
    lines += [f"- `{name}`: {metric_specs()[name].definition}" for name in measured]
    if unavailable:
        by_reason: dict[str, list[str]] = {}
        for name, reason in unavailable.items():
            by_reason.setdefault(reason, []).append(f"`{name}`")
        lines += ["", "Not measured here:"] + [f"- {', '.join(names)}: {why}" for why, names in by_reason.items()]
    return "\n".join(lines) + "\n"


def _measured_metrics(files: dict[str, CellFiles], frame: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    """The metrics some done cell measured (in the registry's order), and why each of the others was
    measured by none (the first reason a cell gives)."""
    found, reasons = set(), {}
    for cell in frame.loc[frame["status"] == "done", "cell"]:
        metrics = files[cell].metrics or {}
        found.update(name for name, value in metrics.items() if value is not None)
        for name, reason in metrics.get("protocol", {}).get("unavailable", {}).items():
            reasons.setdefault(name, reason)
    measured = [name for name in metric_specs() if name in found]
    return measured, {name: why for name, why in reasons.items() if name not in found}


def _used(files: dict[str, CellFiles], frame: pd.DataFrame, key_of) -> dict[str, list[str]]:
    """Done cells grouped by a key of their stored protocol (None: not applicable, left out)."""
    used: dict[str, list[str]] = {}
    for cell in frame.loc[frame["status"] == "done", "cell"]:
        key = key_of((files[cell].metrics or {}).get("protocol", {}))
        if key is not None:
            used.setdefault(key, []).append(cell)
    return used


def _provenance_section(files: dict[str, CellFiles], frame: pd.DataFrame) -> str:
    done = frame[frame["status"] == "done"]
    configs = [files[c].config["provenance"] for c in done["cell"]]
    if not configs:
        return ""
    commits = sorted({c["git_commit"] for c in configs})
    devices = sorted({c["device"] for c in configs})
    packages = ", ".join(f"{k} {v}" for k, v in configs[0]["packages"].items())
    total = sum(c["wall_seconds"] for c in configs)
    return (
        "## Provenance\n\n"
        f"- commits: {', '.join(f'`{c}`' for c in commits)}\n- devices: {'; '.join(devices)}\n"
        f"- packages: {packages}\n- total compute: {total / 60:.1f} min over {len(configs)} cells\n"
    )


def _table_section(frame: pd.DataFrame, axes: list[str], metrics: list[str], assets: Path) -> str:
    table = summary_table(frame, axes, metrics)
    caption = "Mean and 95% t-interval over seeds; best in bold."
    return (
        "## Results\n\nMean ± half-width of the 95% t-interval over seeds (n = seeds); best in bold. "
        "A single seed shows the value alone.\n\n" + _table(table, assets, "results", caption)
    )


def _summary_section(frame: pd.DataFrame, found, axes: list[str], question, ranked: list[str], assets: Path) -> str:
    """The question answered at a glance: a row per level of its axis, with a compact letter display."""
    asked = [m for m in question.metrics if m in ranked]
    if question.holm == "across_metrics":  # the letters from the same family as the answers
        found = comparisons(frame, axes, asked, family="all")
    table = summary_frame(frame, found, axes, question.axis, asked)
    if len(table.columns) <= 2:
        return ""
    caption = (
        f"{question.text} Mean and 95% t-interval over every cell of each level; levels sharing a letter are not "
        "significantly different (Holm) or were not tested."
    )
    return (
        f"## At a glance\n\n{question.text} One row per level of `{question.axis}`, each metric as mean ± 95% "
        "t-interval over every cell of the level (all other axes' levels and seeds); in brackets a compact letter "
        "display: levels that share a letter are not significantly different after Holm's correction (or had too "
        "few seeds for a test), `a` marks the group of the best mean, the best mean is in bold.\n\n"
        + _table(table, assets, "summary", caption)
    )


def _reference_section(frame: pd.DataFrame, assets: Path) -> str:
    """The floor and ceiling of the sample metrics, measured with the same instrument at the same n."""
    done = frame[frame["status"] == "done"]
    if "fid_domain_floor" not in done or done["fid_domain_floor"].isna().all():
        return ""
    samples = _sample_count(frame)
    rows = []
    for size, part in done.groupby("image_px", sort=True):
        rows.append(
            {
                "image size": f"{int(size)} px",
                "fid_domain": fmt(part["fid_domain_floor"].mean()),
                "kid_domain": fmt(part["kid_domain_floor"].mean()),
                "cond_acc": fmt(part["classifier_accuracy"].mean()),
            }
        )
    caption = (
        f"Reference rows: fid_domain and kid_domain of {samples:,} real training images against the test split "
        "(the floor), the domain classifier's test accuracy (the ceiling of cond_acc)."
    )
    return (
        "### Reference rows\n\nThe same instrument at the same n: `fid_domain` and `kid_domain` of the first "
        f"{samples:,} real training images against the test split (the floor a perfect generator would reach at "
        "this n), and the domain classifier's accuracy on the real test split (the ceiling of `cond_acc`).\n\n"
        + _table(pd.DataFrame(rows), assets, "reference", caption)
    )


def _stored_values(files: dict[str, CellFiles], cells: pd.DataFrame, metric: str) -> list:
    """A metric the frame does not hold (a per-class dict, reliability bins), from each cell's metrics.json;
    cells without it left out."""
    values = [(files[c].metrics or {}).get(metric) for c in cells["cell"]]
    return [v for v in values if v]


def _per_class_section(files: dict[str, CellFiles], frame: pd.DataFrame, axes: list[str], assets: Path) -> str:
    """Per-class accuracies (cond_acc of samples, generative_accuracy of test images) and the generative
    classifier's calibration, mean over seeds, in a folded block."""
    done = frame[frame["status"] == "done"]
    groups = [a for a in axes if a != "seed" and done[a].nunique() > 1]
    blocks = []
    for metric, title in (
        ("cond_acc_per_class", "`cond_acc` per class asked for (generated samples)"),
        ("generative_accuracy_per_class", "`generative_accuracy` per class (test images)"),
    ):
        caption = f"{title}, mean over seeds."
        rows = []
        for key, part in done.groupby(groups, sort=False) if groups else [((), done)]:
            per_cell = _stored_values(files, part, metric)
            if not per_cell:
                continue
            key = key if isinstance(key, tuple) else (key,)
            row = {**dict(zip(groups, key)), "n": len(per_cell)}
            row.update({name: f"{np.mean([v[name] for v in per_cell if name in v]):.3f}" for name in per_cell[0]})
            if metric == "generative_accuracy_per_class":
                row["ECE"] = fmt(part["generative_ece"].mean())
            rows.append(row)
        if rows:
            blocks.append(f"{title}, mean over seeds:\n\n" + _table(pd.DataFrame(rows), assets, metric, caption))
    if not blocks:
        return ""
    return "<details><summary>Per class</summary>\n\n" + "\n".join(blocks) + "\n</details>\n"


def _published_section(frame: pd.DataFrame, logs: pd.DataFrame, published: dict, axes: list[str], assets: Path) -> str:
    """The published figures beside ours, one column per value of the grid's first varying axis; a
    published table (`rows`: figures for groups of cells, e.g. one per task and model) row by row."""
    if "rows" in published:
        return _published_rows_section(frame, published, assets)
    done = frame[frame["status"] == "done"]
    lines = ["## Against the published figures\n", published.get("source", "").strip() + "\n"]
    where = published.get("where", {})  # the cells the published figures describe, e.g. {conditioning: none}
    for field, value in where.items():
        done = done[done[field] == value]
        logs = logs[logs[field] == value] if field in logs else logs
    if where:
        lines.append("Compared: the cells with " + ", ".join(f"{k}={v}" for k, v in where.items()) + ".\n")
    epochs = sorted(done["trained_epochs"].dropna().astype(int).unique())
    if published.get("epochs") and epochs and epochs != [published["epochs"]]:
        lines.append(
            f"**These cells trained for {', '.join(map(str, epochs))} epochs, the published ones for "
            f"{published['epochs']}.**\n"
        )
    varying = [a for a in axes if a != "seed" and done[a].nunique() > 1]
    compared = ", ".join(f"{k}={v}" for k, v in where.items()) or "all cells"
    groups = list(done.groupby(varying[0], sort=False)) if varying else [(compared, done)]
    rows = []
    for metric, value in published.get("metrics", {}).items():
        row = {"metric": metric, "published": fmt(value)}
        for key, part in groups:
            row[f"here, {varying[0]}={key}" if varying else str(key)] = "{} ({})".format(*_against(part, metric, value))
        rows.append(row)
    caption = "Against the published figures: mean and 95% t-interval over seeds, the difference in brackets."
    lines += [
        _table(pd.DataFrame(rows), assets, "published", caption),
        "Mean ± 95% t-interval over seeds; in brackets, the difference from the published figure, to the "
        "same decimal place.\n",
    ]
    lines += [_published_sentence(metric, value, groups, varying) for metric, value in published["metrics"].items()]
    lines += _curve_lines(done, logs, published["metrics"], varying)
    return "\n".join(lines) + "\n"


def _published_rows_section(frame: pd.DataFrame, published: dict, assets: Path) -> str:
    done = frame[frame["status"] == "done"]
    rows = []
    for row in published["rows"]:
        part = done
        for field, value in row["where"].items():
            part = part[part[field] == value]
        cells = ", ".join(f"{field}={value}" for field, value in row["where"].items())
        for metric, value in row["metrics"].items():
            here, difference = _against(part, metric, value)
            rows.append(
                {
                    "cells": cells,
                    "metric": metric,
                    "published": fmt(value),
                    "here (mean ± 95% t-interval over seeds)": here,
                    "difference": difference,
                }
            )
    caption = "Against the published figures, row by row: mean and 95% t-interval over seeds."
    return "\n".join(
        [
            "## Against the published figures\n",
            published.get("source", "").strip() + "\n",
            _table(pd.DataFrame(rows), assets, "published", caption),
        ]
    )


def _against(cells: pd.DataFrame, metric: str, published: float) -> tuple[str, str]:
    """The cells' mean ± 95% t-interval (with n) of a metric, and its difference from a published figure at
    the interval's decimal place."""
    mean, half, n = t_interval(cells[metric]) if metric in cells else (float("nan"), float("nan"), 0)
    if not n:
        return ("no cell done" if cells.empty else f"not measured in these {len(cells)} cells' data"), "-"
    return f"{interval_text(mean, half)} (n = {n})", at_place_of(mean - published, half)


def _curve_lines(done: pd.DataFrame, logs: pd.DataFrame, published: dict, varying: list[str]) -> list[str]:
    """Where the cells recorded a learning curve: the first epoch at which each variant's mean over seeds
    reaches each published figure."""
    names = [m for m in published if f"test_{m}" in logs]
    if not names or done["curve_images"].isna().all():
        return []
    images = int(done["curve_images"].dropna().iloc[0])
    lines = [
        f"\nLearning curve: after every epoch each cell measured {', '.join(names)} on the first {images:,} test "
        "images (the figure *Test metrics after each epoch* below). Where the mean over seeds first reaches the "
        "published figure:\n"
    ]
    parts = list(logs.groupby(varying[0], sort=False)) if varying else [("all cells", logs)]
    for metric in names:
        value, lower = published[metric], metric_specs()[metric].better == "lower"
        for key, part in parts:
            curve = part.groupby("epoch")[f"test_{metric}"].mean()
            reached = curve[curve <= value] if lower else curve[curve >= value]
            name = f"{varying[0]}={key}" if varying else key
            last = f"{fmt(curve.iloc[-1])} after epoch {curve.index[-1]}"
            verdict = f"reaches {fmt(value)} at epoch {reached.index[0]}" if len(reached) else "not reached"
            lines.append(f"- {metric}, {name}: {verdict} ({last})")
    return lines


def _published_sentence(metric: str, value: float, groups, varying: list[str]) -> str:
    """Where we differ from a published figure, in words."""
    intervals = {key: t_interval(part[metric]) for key, part in groups}
    here = {key: mean for key, (mean, _, _) in intervals.items()}
    if all(v > value for v in here.values()) or all(v < value for v in here.values()):
        side = "higher" if next(iter(here.values())) > value else "lower"
        closest = min(here, key=lambda k: abs(here[k] - value))
        name = f"{varying[0]}={closest}" if varying else closest
        return (
            f"- {metric}: every variant here is {side} than the published {fmt(value)}; the closest is "
            f"{name} at {interval_text(*intervals[closest][:2])}."
        )
    return f"- {metric}: the published {fmt(value)} lies within the range of the variants here."


def _comparison_section(frame: pd.DataFrame, found, axes: list[str], ranked: list[str]) -> str:
    lines = [
        "## Comparisons\n",
        "Every pair of levels of every axis, differences paired on the seed and on every other axis's value "
        "(a pair = two cells that differ only in the compared axis); mean ± 95% t-interval, paired t-test "
        f"(from at least {MIN_SEEDS} seeds), d = Cohen's d_z of the differences (mean / standard deviation) "
        f"with its 95% interval, Holm's correction (family-wise error {ALPHA}). {family_text(found)}\n",
    ]
    for axis, along in compared_axes(frame, axes).items():
        lines.append(f"### {axis}{along_text(along)}\n")
        lines += [f"- {refusal.text()}" for refusal in metrics_along(frame, axis, along, ranked)[1]]
        lines += [f"- {sentence(c)}" for c in found if c.axis == axis]
        lines.append("")
    return "\n".join(lines)


def _scale_section(
    frame: pd.DataFrame, other_store: CellStore, grid: GridCells, ranked: list[str], assets: Path, name: str
) -> str:
    from benchmark.report.frame import from_store_record
    from benchmark.report.ranking import ranking_agreement

    other = cells_frame(other_store, from_store_record(other_store, grid.name))
    table = ranking_agreement(frame, other, grid.axes, ranked)
    if table.empty:
        return ""

    def scale(f: pd.DataFrame) -> str:
        done = f[f["status"] == "done"]
        return ", ".join(map(str, sorted(done["trained_epochs"].dropna().astype(int).unique()))) + " epochs"

    return "\n".join(
        [
            "## Does the ranking hold at another scale?\n",
            f"The same {table['cells'].iloc[0]} cells (same axis values and seeds) trained at another scale in "
            f"`{other_store.root}`: here {scale(frame)}, there {scale(other)}. For each axis and headline metric, the "
            "ranking of the levels by their mean over those cells in each run, Kendall's tau between the two "
            "rankings (1: identical order) and whether the best level is the same.\n",
            _table(table.drop(columns="cells"), assets, name, f"Ranking agreement with {other_store.root}."),
        ]
    )


@dataclass
class FigurePlan:
    """What a report's figures share: the metrics they may draw, the axes that vary, the colour axis."""

    report: Report
    shown: list[str]  # the metrics findings are written on (through-q reconstructions of an image task: none)
    varying: list[str]  # axes with more than one level, seed aside
    hue: str | None  # the mechanism axis where it varies: every figure colours by it
    groups: dict  # compared_axes: zipped axes change with their axis, one figure for them
    spread: str  # what a figure's points and intervals are

    def image(self, filename: str, caption: str) -> str:
        return f"![{caption}]({self.report.grid.name}/{filename})\n\n*{caption}*\n"

    @property
    def curve_hue(self) -> str | None:
        return self.hue or (self.varying[0] if self.varying else None)


Figure = Callable[[FigurePlan], list[str]]
# The figures of a report's Figures section in order; each draws its files and returns its markdown lines
# (none where the cells give it nothing to draw).
FIGURES: Registry[Figure] = Registry("report figure")


def _figure_section(r: Report) -> str:
    varying = [a for a in r.axes if a != "seed" and r.frame[a].nunique() > 1]
    plan = FigurePlan(
        r,
        shown=finding_metrics(r.frame, [m for m in r.metrics if metric_specs()[m].better])[0],
        varying=varying,
        hue=MECHANISM_AXIS if MECHANISM_AXIS in varying else None,
        groups=compared_axes(r.frame, r.axes),
        spread=_spread_text(r.frame),
    )
    lines = ["## Figures\n"]
    for name in FIGURES.names():
        lines += FIGURES[name](plan)
    return "\n".join(lines)


@FIGURES.register("metrics against each axis")
def _metrics_figures(f: FigurePlan) -> list[str]:
    frame, lines = f.report.frame, []
    for axis, along in f.groups.items():
        if axis == f.hue and len(f.groups) > 1:
            continue
        others = [a for a in f.groups if a != axis]
        colour = f.hue if f.hue in others else (others[0] if others else None)
        pooled = [a for a in others if a != colour]
        drawn, left_out = _drawable(frame, f.groups, [axis, colour], f.shown)
        if not drawn:
            continue
        filename = f"metrics_vs_{axis}.png"
        figures.metrics_against_axis(frame, axis, colour, drawn, f.report.assets / filename)
        caption = (
            f"Metrics against {axis}{along_text(along)}"
            + (f", by {colour}" if colour else "")
            + f"; {f.spread}"
            + (f"; each seed's value the mean over {' and '.join(pooled)}" if pooled else "")
            + left_out
        )
        lines.append(f.image(filename, caption))
    return lines


@FIGURES.register("heatmap")
def _heatmap_figure(f: FigurePlan) -> list[str]:
    if len(f.varying) != 2 or len(f.groups) != 2:  # two zipped axes would fill only the diagonal
        return []
    drawn, _ = _drawable(f.report.frame, f.groups, f.varying, f.shown)
    if not drawn:
        return []
    filename = f"heatmap_{drawn[0]}.png"
    figures.heatmap(f.report.frame, f.varying[0], f.varying[1], drawn[0], f.report.assets / filename)
    over = "one seed" if f.spread.startswith("one seed") else "mean over seeds"
    return [f.image(filename, f"{drawn[0]} over {f.varying[0]} x {f.varying[1]}, {over}")]


@FIGURES.register("training curves")
def _training_curves_figure(f: FigurePlan) -> list[str]:
    r = f.report
    frame, logs = r.frame, r.logs
    if not len(logs):
        if not _legacy(r.files, frame):
            return []
        return [  # per-epoch logs not published: nothing to draw from
            "*Training curves: not drawn. These cells' per-epoch logs were not published with the report; the "
            "figures first published with it were drawn under older figure rules "
            f"(`git log -- reports/{r.grid.name}/`).*\n"
        ]
    curve_hue = f.curve_hue
    rest = [a for a in f.groups if a != curve_hue and a in logs]
    if curve_hue in _SCALE_FIELDS and rest and not f.hue:  # per-image sums of two scales in one panel: swap
        curve_hue, rest = rest[0], [curve_hue, *rest[1:]]
    rest.sort(key=lambda a: a not in _SCALE_FIELDS)  # a row per level of what sets the loss's scale
    nonnegative = bool(frame.loc[frame["status"] == "done", "recon_loss"].isin(["bce", "mse"]).all())
    figures.training_curves(logs, curve_hue, r.assets / "training_curves.png", rest[0] if rest else None, nonnegative)
    validated = "; the last column: the validation split's loss" if "val_loss" in logs else ""
    pooled = f", pooled over {' and '.join(rest[1:])}" if len(rest) > 1 else ""
    caption = (
        f"Training loss terms per epoch ({f.spread}{f'; a row per {rest[0]}' if rest else ''}{pooled}){validated}"
        "; on a log axis a band whose lower end reaches 0 runs off the bottom"
    )
    return [f.image("training_curves.png", caption)]


@FIGURES.register("learning curves")
def _learning_curves_figure(f: FigurePlan) -> list[str]:
    logs, spec = f.report.logs, f.report.grid.spec
    tested = [c.removeprefix("test_") for c in logs.columns if c.startswith("test_")]
    if not tested:
        return []
    published = (spec.published or {}).get("metrics", {})  # a published table (rows) has no curve
    figures.learning_curves(logs, f.curve_hue, tested, published, f.report.assets / "learning_curves.png")
    caption = "Test metrics after each epoch (mean and 95% t-interval over seeds)" + (
        _published_line_text(spec.published) if set(published) & set(tested) else ""
    )
    return [f.image("learning_curves.png", caption)]


@FIGURES.register("reliability")
def _reliability_figure(f: FigurePlan) -> list[str]:
    frame, axis = f.report.frame, f.hue or (f.varying[0] if f.varying else None)
    curves = _pooled_reliability(f.report.files, frame, axis)
    if not curves:
        return []
    colours = figures.palette(frame[frame["status"] == "done"], axis) or {}
    figures.reliability(curves, f.report.assets / "reliability.png", {f"{axis}={k}": v for k, v in colours.items()})
    others = [a for a in f.varying if a != axis]
    caption = (
        "Calibration of the generative classifier p(y|x) on the test images: accuracy against confidence "
        f"per bin, pooled over seeds{''.join(f' and {a}' for a in others)}, each marker's area the bin's share "
        "of the images; on the dashed line it is calibrated"
    )
    return [f.image("reliability.png", caption)]


@FIGURES.register("samples and reconstructions")
def _cell_image_figures(f: FigurePlan) -> list[str]:
    question = f.report.grid.spec.question
    asked = [m for m in (question.metrics if question else f.shown) if m in f.shown]
    return _cell_images(f.report, asked[0] if asked else None)


@FIGURES.register("latent figures")
def _latent_figure_lines(f: FigurePlan) -> list[str]:
    r = f.report
    return _latent_figures(r.store, r.frame, r.axes, r.assets, r.grid.name, r.data_dir, r.published)


def _published_line_text(published: dict) -> str:
    epochs = published.get("epochs")
    return "; dashed: the published figure" + (f", reached after {epochs} epochs there" if epochs else "")


_SCALE_FIELDS = ("image_size", "dataset", "task", "recon_loss", "binarize")  # change a per-image loss's scale


def _spread_text(frame: pd.DataFrame) -> str:
    """What a figure's points and intervals are: over seeds, or one seed and no interval."""
    done = frame[frame["status"] == "done"]
    if "seed" not in done or done["seed"].nunique() > 1:
        return "mean and 95% t-interval over seeds"
    return f"one seed ({int(done['seed'].iloc[0])}): the value, no interval"


def _drawable(frame: pd.DataFrame, groups: dict, figure_axes: list, metrics: list[str]) -> tuple[list[str], str]:
    """The metrics a figure along `figure_axes` (x, colour) may draw: those compared along every one of them
    (a normalised form in place of one that is not), none whose value is the same in every cell; and a
    caption clause naming what was left out and why."""
    drawn, refusals = list(metrics), {}
    shown_axes = [a for a in figure_axes if a is not None]
    for axis in shown_axes:  # along each axis with the figure's other axis held at each of its levels
        held = [a for a in shown_axes if a != axis]
        for _, part in frame.groupby(held, sort=False, dropna=False) if held else [((), frame)]:
            compared, refused = metrics_along(part, axis, groups.get(axis, ()), drawn)
            drawn = [m for m in drawn if m in compared] + [m for m in compared if m not in drawn]
            refusals.update({r.metric: r for r in refused if r.metric not in refusals})
    done = frame[frame["status"] == "done"]
    constant = [m for m in drawn if done[m].dropna().nunique() == 1]
    drawn = [m for m in drawn if m not in constant]
    notes = [f"{r.metric} (not comparable along {r.axis})" for r in refusals.values()]
    notes += [f"{m} (the same in every cell: {fmt(done[m].dropna().iloc[0])})" for m in constant]
    return drawn, (f"; not drawn: {', '.join(notes)}" if notes else "")


def _pooled_reliability(files: dict[str, CellFiles], frame: pd.DataFrame, axis: str | None) -> dict[str, list]:
    """Per level of `axis` (or all cells), the generative classifier's reliability bins summed over cells:
    images added, confidence and accuracy weighted by them."""
    done = frame[frame["status"] == "done"]
    curves = {}
    for level, part in done.groupby(axis, sort=False) if axis else [("all cells", done)]:
        rows = _stored_values(files, part, "generative_reliability")
        if not rows:
            continue
        pooled = []
        for bins in zip(*rows):
            count = sum(n for _, _, n in bins)
            weighted = [sum(v[i] * v[2] for v in bins if v[2]) / count if count else float("nan") for i in (0, 1)]
            pooled.append([*weighted, count])
        curves[f"{axis}={level}" if axis else level] = pooled
    return curves


MAX_SHOWN_CELLS = 12  # image grids per report; beyond it, the first level of the axes but the mechanism axis


def _representatives(frame: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """The first seed's cell of each axis combination; in a large grid only the combinations at the first
    level of every axis but the mechanism axis (so every mechanism still shows)."""
    done = frame[frame["status"] == "done"]
    first_seed = done["seed"].min() if "seed" in done else None
    reps = done[done["seed"] == first_seed] if first_seed is not None else done
    if len(reps) > MAX_SHOWN_CELLS:
        for axis in axes:
            if axis not in ("seed", MECHANISM_AXIS) and len(reps) > MAX_SHOWN_CELLS:
                reps = reps[reps[axis] == frame[axis].iloc[0]]
    return reps.head(MAX_SHOWN_CELLS)


def _cell_images(r: Report, best_metric=None) -> list[str]:
    store, frame, axes, assets, name, published = r.store, r.frame, r.axes, r.assets, r.grid.name, r.published
    first = _first_done(r.files, frame)
    config = (first.config if first else {}).get("cell", {})
    lines = [
        "### Samples and reconstructions\n",
        f"Samples: {_samples_layout(config)}. Reconstructions: test images above, reconstructions below. "
        "Enlarged (nearest neighbour) so that every image is at least 112 px wide. The first seed's cell of each "
        "combination shown, and the best cell of the grid.\n",
    ]
    (assets / "cells").mkdir(exist_ok=True)
    shown_cells = _representatives(frame, axes)
    best = _best_cell(frame, best_metric)
    rows = [(row, "") for row in shown_cells.itertuples()]
    if best is not None and best.cell not in set(shown_cells["cell"]):
        rows.append((best, f"best {best_metric} of the grid ({fmt(getattr(best, best_metric))}), seed {best.seed}: "))
    for row, heading in rows:
        label = ", ".join(f"{a}={getattr(row, a)}" for a in axes if a != "seed")
        present = []
        for kind in ("samples", "reconstructions"):
            source, shown = store.cell_dir(row.cell) / f"{kind}.png", f"cells/{row.cell}-{kind}.png"
            if source.exists():
                data = upscaled_png(source.read_bytes(), display_scale(row.image_px))
                atomic_write(assets / shown, lambda tmp, d=data: tmp.write_bytes(d))
                present.append(kind)
            elif _keep_published(published, assets, shown):
                present.append(kind)
        if not present:  # rendered from published data, and the published report did not show this cell
            continue
        images = " ".join(f"![{kind}]({name}/cells/{row.cell}-{kind}.png)" for kind in present)
        lines.append(f"**{heading}{label or row.cell}** (`{row.cell}`)\n\n{images}\n")
    return lines


def _best_cell(frame: pd.DataFrame, metric: str | None):
    """The done cell with the best value of `metric` (None: no metric, or no value)."""
    done = frame[frame["status"] == "done"]
    if metric is None or metric not in done or done[metric].isna().all():
        return None
    better = metric_specs()[metric].better
    index = done[metric].idxmin() if better == "lower" else done[metric].idxmax()
    return next(done.loc[[index]].itertuples())


def _samples_layout(config: dict) -> str:
    """How evaluate.image_grids lays out a cell's samples.png."""
    if config.get("task"):
        return "one row per test image: its visible input (hidden pixels grey), five completions, the truth"
    if config.get("condition") == "text":
        return "one sample for each of the first 20 test captions, 10 per row"
    return "one row per class"


def _keep_published(published: Path, assets: Path, name: str) -> bool:
    """Copy an image of the published report that the store cannot draw again; False if there is none."""
    if not (published / name).is_file():
        return False
    data = (published / name).read_bytes()
    atomic_write(assets / name, lambda tmp: tmp.write_bytes(data))
    return True


def _latent_figures(store, frame, axes, assets: Path, name: str, data_dir, published: Path) -> list[str]:
    reps = _representatives(frame, axes)
    if MECHANISM_AXIS not in reps:
        return []
    trained = reps[[(store.cell_dir(c) / "model.pt").exists() for c in reps["cell"]]]
    if trained.empty:  # rendered from published data: the figures the published report drew
        return _published_latent_figures(reps, axes, assets, name, published)
    reps = trained
    lines = []
    by_mode = {mode: reps[reps[MECHANISM_AXIS] == mode]["cell"].iloc[0] for mode in reps[MECHANISM_AXIS].unique()}
    if {"none", "concat"} <= set(by_mode):
        panels = {
            f"{mode} ({'VAE' if mode == 'none' else 'CVAE'})": latents.tsne_of_latent_means(
                store, by_mode[mode], data_dir
            )
            for mode in ("none", "concat")
        }
        bundle = load_stored_cell(store, by_mode["none"], data_dir).bundle
        figures.scatter_panels(panels, bundle.class_names, assets / "tsne_none_vs_concat.png")
        lines.append(_TSNE_CAPTION.format(name=name, cells=_cells_text(reps, axes, by_mode, ("none", "concat"))))
    sizes = dict(zip(reps["cell"], reps["image_px"]))
    for mode, cell_id in by_mode.items():
        trained = load_stored_cell(store, cell_id, data_dir)
        strip = interpolation_png(trained.model, trained.bundle.test.images, trained.conditions.test)
        png = upscaled_png(strip, display_scale(sizes[cell_id]))
        atomic_write(assets / f"interpolation_{mode}.png", lambda tmp, d=png: tmp.write_bytes(d))
        lines.append(
            _INTERPOLATION_CAPTION.format(name=name, mode=mode, cells=_cells_text(reps, axes, by_mode, [mode]))
        )
    return lines


def _cells_text(reps: pd.DataFrame, axes: list[str], by_mode: dict, modes) -> str:
    """Which cells a latent figure shows: their id and the values of the other axes."""
    shown = []
    for mode in modes:
        row = next(reps[reps["cell"] == by_mode[mode]].itertuples())
        values = ", ".join(f"{a}={getattr(row, a)}" for a in axes if a != MECHANISM_AXIS)
        shown.append(f"`{row.cell}`" + (f" ({values})" if values else ""))
    return "; ".join(shown)


_TSNE_CAPTION = (
    "![t-SNE]({name}/tsne_none_vs_concat.png)\n\n*t-SNE of test-set latent means, coloured by "
    "class: the plain VAE must encode the class in z, the CVAE is given it and need not. Cells: {cells}.*\n"
)
_INTERPOLATION_CAPTION = (
    "![interpolation {mode}]({name}/interpolation_{mode}.png)\n\n*Latent interpolation, "
    "conditioning {mode}: z moves between two test images' posterior means, condition held at "
    "the first's. Cell: {cells}.*\n"
)


def _published_latent_figures(reps, axes, assets: Path, name: str, published: Path) -> list[str]:
    lines = []
    by_mode = {mode: reps[reps[MECHANISM_AXIS] == mode]["cell"].iloc[0] for mode in reps[MECHANISM_AXIS].unique()}
    if {"none", "concat"} <= set(by_mode) and _keep_published(published, assets, "tsne_none_vs_concat.png"):
        lines.append(_TSNE_CAPTION.format(name=name, cells=_cells_text(reps, axes, by_mode, ("none", "concat"))))
    for mode in by_mode:
        if _keep_published(published, assets, f"interpolation_{mode}.png"):
            lines.append(
                _INTERPOLATION_CAPTION.format(name=name, mode=mode, cells=_cells_text(reps, axes, by_mode, [mode]))
            )
    return lines


_register_sections()

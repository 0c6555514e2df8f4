"""The sections of a report, registered in the order they appear (report/context.py SECTIONS)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.metrics.registry import metric_specs
from benchmark.report.comparability import metrics_along, through_q_text
from benchmark.report.context import (
    MECHANISM_AXIS,
    SECTIONS,
    Report,
    Section,
    first_metrics,
    legacy_protocol,
    override_options,
    report_table,
    sample_count,
    stored_values,
)
from benchmark.report.figure_section import figure_section
from benchmark.report.frame import CellFiles, GridCells, cells_frame
from benchmark.report.index import scale_text
from benchmark.report.published_data import LEGACY_NOTE
from benchmark.report.published_section import published_section
from benchmark.report.stats import (
    ALPHA,
    MIN_SEEDS,
    PER_IMAGE_COSTS,
    along_text,
    claim_verdict,
    compared_axes,
    comparisons,
    family_text,
    findings,
    fmt,
    sentence,
    span_text,
    summary_table,
)
from benchmark.report.summary import summary_frame
from benchmark.store import CellStore
from benchmark.training.selection import CONVERGENCE_TOLERANCE


def _with_metrics(section: Section) -> Section:
    """A section about the metrics' values: nothing where no done cell holds a headline metric."""
    return lambda report: section(report) if report.metrics else ""


def _register_sections() -> None:
    def question_section(r: Report) -> str:
        question = r.grid.spec.question
        if not (question and r.ranked):
            return ""
        return _summary_section(r.frame, r.found, r.axes, question, r.grid.spec.findings_by, r.ranked, r.assets)

    def findings_section(r: Report) -> str:
        if not r.ranked:
            return ""
        spec = r.grid.spec
        return _findings_section(r.frame, r.found, r.axes, r.ranked, spec.findings_by, spec.question, r.through_q)

    def against_published(r: Report) -> str:
        published = r.grid.spec.published
        return published_section(r.frame, r.logs, published, r.axes, r.assets) if published else ""

    def scale_sections(r: Report) -> str:
        parts = [
            _scale_section(r.frame, other, r.grid, r.ranked, r.assets, f"scale_check_{i + 1}")
            for i, other in enumerate(r.scale_checks)
        ]
        return "\n".join(part for part in parts if part)

    entries: dict[str, Section] = {
        "title": lambda r: f"# Report: {r.grid.name}\n",
        "left out": lambda r: _left_out(r.frame),
        "legacy": lambda r: LEGACY_NOTE.format(name=r.grid.name) if legacy_protocol(r.files, r.frame) else "",
        "caveats": lambda r: _caveats(r.files, r.frame),
        "description": lambda r: f"{r.grid.spec.description.strip()}\n",
        "overrides": lambda r: _overrides_line(r.grid),
        "scale": lambda r: _scale_line(r.frame),
        "training": lambda r: _training_line(r.frame),
        "beyond_cpu": lambda r: f"**Beyond CPU**: {r.grid.spec.beyond_cpu.strip()}\n" if r.grid.spec.beyond_cpu else "",
        "at a glance": question_section,
        "findings": findings_section,
        "claims": lambda r: _claims_section(r.found, r.grid.spec.claims) if r.grid.spec.claims else "",
        "matching": lambda r: _matching_section(r.grid, r.frame) if r.grid.spec.match_params else "",
        "cells": lambda r: _status_section(r.frame),
        "protocol": lambda r: _protocol_section(r.files, r.frame, r.grid.spec.shows),
        "provenance": lambda r: _provenance_section(r.files, r.frame),
        "results": _with_metrics(lambda r: _table_section(r.frame, r.axes, r.metrics, r.assets, _shown(r))),
        "reference rows": _with_metrics(lambda r: _reference_section(r.frame, r.assets)),
        "per class": _with_metrics(lambda r: _per_class_section(r.files, r.frame, r.axes, r.assets)),
        "published": _with_metrics(against_published),
        "comparisons": _with_metrics(lambda r: _comparison_section(r.frame, r.found, r.axes, r.ranked)),
        "scale checks": _with_metrics(scale_sections),
        "figures": _with_metrics(figure_section),
        "data": lambda r: (
            f"Every cell's metrics in long format: [{r.grid.name}/metrics.csv]({r.grid.name}/metrics.csv)\n"
        ),
    }
    for name, section in entries.items():
        SECTIONS.register(name)(section)


def _shown(r: Report) -> list[str]:
    """The grid's `shows` metrics that some done cell holds and the table does not have already."""
    done = r.frame[r.frame["status"] == "done"]
    return [m for m in r.grid.spec.shows if m not in r.metrics and m in done and done[m].notna().any()]


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


def _overrides_line(grid: GridCells) -> str:
    """A run that changed every cell on top of the file (`bench run --override`): the description above is the
    file's, the cells are not exactly what it says."""
    if not grid.overrides:
        return ""
    return (
        f"**Run with** {override_options(grid)}: these settings of every cell differ from the grid file's "
        "(the description above is the file's).\n"
    )


def _scale_line(frame: pd.DataFrame) -> str:
    """What the done cells were trained on, and what they cost: summed cell time and the wall time they ran in."""
    done = frame[frame["status"] == "done"]
    if done.empty:
        return ""
    cost = f"{len(done)} cells, {done['wall_seconds'].sum() / 60:,.0f} min of cell time (training and evaluation)"
    timed = done.dropna(subset=["start", "end"])
    if not timed.empty:
        cost += f", {_busy_minutes(timed):,.0f} min of wall time with at least one cell running"
    return f"**Scale**: {scale_text(frame)}. **Cost**: {cost}.\n"


def _busy_minutes(cells: pd.DataFrame) -> float:
    """The length of the union of the cells' [start, end] spans: a run resumed a day later does not count the
    day between (the first start to the last end would)."""
    spans = sorted(zip(pd.to_datetime(cells["start"]), pd.to_datetime(cells["end"])))
    busy, (open_start, open_end) = pd.Timedelta(0), spans[0]
    for start, end in spans[1:]:
        if start > open_end:
            busy += open_end - open_start
            open_start, open_end = start, end
        else:
            open_end = max(open_end, end)
    return (busy + open_end - open_start).total_seconds() / 60


def _training_line(frame: pd.DataFrame) -> str:
    """How the cells were trained and whether they converged (cells that record a training summary)."""
    done = frame[(frame["status"] == "done") & frame["converged"].notna()]
    if done.empty:
        return ""
    converged = int(done["converged"].astype(bool).sum())
    return (
        f"**Training**: {converged} of {len(done)} cells converged (their loss improved by at most "
        f"{CONVERGENCE_TOLERANCE:.1%} over their last epochs, or early stopping ended them){_stops_text(done)}; "
        f"epochs run {span_text(done['epochs_run'])}, epoch measured {span_text(done['selected_epoch'])}.\n"
    )


def _stops_text(done: pd.DataFrame) -> str:
    """How the cells of a run with early stopping ended: by it, or at the epoch budget (and how many of those
    measured their last epoch, the best so far: still improving on the validation split)."""
    if "stopped" not in done or not (done["stopped"] == "early_stopping").any():
        return ""
    at_budget = done[done["stopped"] == "epoch_budget"]
    still = int((at_budget["selected_epoch"] == at_budget["epochs_run"]).sum())
    early = int((done["stopped"] == "early_stopping").sum())
    text = f"; {early} ended by early stopping, {len(at_budget)} at the epoch budget"
    return text + (f" ({still} of them with their best validation epoch the last)" if still else "")


def _findings_section(
    frame: pd.DataFrame, found, axes: list[str], ranked: list[str], by: tuple[str, ...], question, through_q=()
):
    """Findings over the whole grid, then within each level of the `by` axes (for the question's axis only,
    when the grid names a question), each level with its own Holm family."""
    lines = [read_label_information(frame, line) for line in findings(frame, found, axes, ranked)]
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
    for axis, level, inner in findings_within(frame, axes, ranked, by, question.axis if question else None):
        parts += [f"### Within {axis}={level}\n", "Holm's correction within these cells' comparisons.\n"]
        parts += [f"- {line}" for line in inner] + [""]
    return "\n".join(parts)


def levels_of(frame: pd.DataFrame, axes: list[str], axis: str):
    """(level, its cells, the other axes) for each level of `axis`: a question asked again within each."""
    rest = [a for a in axes if a != axis]
    for level in dict.fromkeys(frame[axis]):
        yield level, frame[frame[axis] == level], rest


def findings_within(frame: pd.DataFrame, axes: list[str], ranked: list[str], by, only_axis, family="metric"):
    """(by-axis, level, findings) for each level of each `by` axis, each level its own Holm family."""
    for axis in by:
        for level, part, rest in levels_of(frame, axes, axis):
            inner = findings(part, comparisons(part, rest, ranked, family), rest, ranked, only_axis)
            if inner:
                yield axis, level, [read_label_information(part, line) for line in inner]


def read_label_information(frame: pd.DataFrame, line: str) -> str:
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
    groups = [a for a in grid.axes if a not in ("seed", MECHANISM_AXIS, "model")]  # matched across both

    def spread(counts: pd.Series) -> float:
        return (counts.max() - counts.min()) / counts.max()

    worst = done.groupby(groups)["parameters"].agg(spread).max() if groups else spread(done["parameters"])
    return (
        "## Parameter matching\n\n"
        "This grid sets `match_params`: within each combination of the other axes, every conditioning mechanism's "
        "and model's hidden widths (MLP hidden layers, conv channels) were scaled by the cell field `width_scale` "
        f"until its parameter count came within {MATCH_TOLERANCE:.0%} of the largest in the group (a VQ-VAE's "
        "count includes its codebook and its code prior), which keeps its own widths. Largest measured spread "
        f"within a group: {worst:.2%}.\n"
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


def _caveats(files: dict[str, CellFiles], frame: pd.DataFrame) -> str:
    """What the cells' protocol warns about (an untrained text encoder), first, before any number is read."""
    metrics = first_metrics(files, frame)
    notes = metrics["protocol"].get("conditions", {}).get("warnings", []) if metrics else []
    return "".join(f"**Caveat:** {note}\n" for note in notes)


def _protocol_section(files: dict[str, CellFiles], frame: pd.DataFrame, shows: list[str]) -> str:
    metrics = first_metrics(files, frame)
    if not metrics:
        return ""
    protocol = metrics["protocol"]
    settings = ", ".join(f"{k} = {v}" for k, v in protocol["eval"].items())
    lines = ["## Evaluation protocol\n", f"Settings: {settings}.\n"]
    classifiers = _domain_classifiers(files, frame)
    if classifiers:
        named = ", ".join(f"`{key}` (test accuracy {accuracy:.4f})" for key, accuracy in classifiers.items())
        lines.append(
            f"Domain classifier{'s, one per data set,' if len(classifiers) > 1 else ''} {named} "
            f"give{'' if len(classifiers) > 1 else 's'} the features of `fid_domain` / `kid_domain` and the "
            "predictions of `cond_acc`.\n"
        )
    for what, used in (
        ("evaluation protocols", _used(files, frame, lambda p: p.get("version", "before protocol versions"))),
        ("domain classifiers", _used(files, frame, lambda p: p.get("domain_classifier", {}).get("key"))),
    ):
        expected = 1
        if what == "domain classifiers":  # a data set has its own classifier
            expected = len({(files[c].config or {}).get("cell", {}).get("dataset") for v in used.values() for c in v})
        if len(used) > expected:
            which = "; ".join(f"`{key}` by {len(cells)} cells" for key, cells in sorted(used.items()))
            lines.append(
                f"**Warning:** the cells of this report were measured under {len(used)} different {what} "
                f"({which}): numbers from different ones are not comparable. Measure them again under one "
                "with `bench evaluate --grid ...`.\n"
            )
    for key in ("likelihood", "label"):
        if key in protocol:
            lines.append(f"{key.capitalize()}: {protocol[key]}.\n")
    measured, unavailable = _measured_metrics(files, frame, shows)
    lines += [f"- `{name}`: {metric_specs()[name].definition}" for name in measured]
    if unavailable:
        by_reason: dict[str, list[str]] = {}
        for name, reason in unavailable.items():
            by_reason.setdefault(reason, []).append(f"`{name}`")
        lines += ["", "Not measured here:"] + [f"- {', '.join(names)}: {why}" for why, names in by_reason.items()]
    return "\n".join(lines) + "\n"


def _domain_classifiers(files: dict[str, CellFiles], frame: pd.DataFrame) -> dict[str, float]:
    """Each domain classifier the done cells were measured with, and its test accuracy."""
    found = {}
    for cell in frame.loc[frame["status"] == "done", "cell"]:
        classifier = (files[cell].metrics or {}).get("protocol", {}).get("domain_classifier")
        if classifier:
            found.setdefault(classifier["key"], classifier["test_accuracy"])
    return found


def _measured_metrics(
    files: dict[str, CellFiles], frame: pd.DataFrame, shows: list[str]
) -> tuple[list[str], dict[str, str]]:
    """The metrics some done cell measured (in the registry's order), with the derived ones the grid shows, and
    why each of the others was measured by none (the first reason a cell gives)."""
    found, reasons = set(), {}
    derived = [spec for spec in metric_specs().values() if spec.derive and spec.name in shows]
    for cell in frame.loc[frame["status"] == "done", "cell"]:
        metrics = files[cell].metrics or {}
        found.update(name for name, value in metrics.items() if value is not None)
        found.update(spec.name for spec in derived if spec.value(metrics) is not None)
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
    total = done["wall_seconds"].sum()  # a resumed cell's earlier runs counted (report/frame.py)
    return (
        "## Provenance\n\n"
        f"- commits: {', '.join(f'`{c}`' for c in commits)}\n- devices: {'; '.join(devices)}\n"
        f"- packages: {packages}\n- total compute: {total / 60:.1f} min over {len(configs)} cells\n"
    )


def _table_section(frame: pd.DataFrame, axes: list[str], metrics: list[str], assets: Path, shown=()) -> str:
    """`shown`: metrics beside the ranked ones, shown without a best."""
    table = summary_table(frame, axes, [*metrics, *shown], unranked=shown)
    caption = "Mean and 95% t-interval over seeds; best in bold."
    return (
        "## Results\n\nMean ± half-width of the 95% t-interval over seeds (n = seeds); best in bold. "
        "A single seed shows the value alone."
        + _per_image_cost_text(frame, table)
        + "\n\n"
        + report_table(table, assets, "results", caption)
    )


def _per_image_cost_text(frame: pd.DataFrame, table: pd.DataFrame) -> str:
    """How the per-image cost columns were measured, when the table has them."""
    if PER_IMAGE_COSTS["sample_ms_per_image"] not in table:
        return ""
    timed = frame[frame["sample_ms_per_image"].notna()]
    cpus = sorted({str(c) for c in timed["sample_cpu"].dropna()})
    load = pd.to_numeric(timed["sample_load_average"], errors="coerce").dropna()

    def settings(column: str) -> str:
        return " or ".join(f"{int(v):,}" for v in sorted(timed[column].dropna().unique()))

    samplers = (
        "; ".join(
            f"{model}: {sampler}"
            for model, sampler in timed.groupby("model", sort=False)["sample_sampler"].first().items()
        )
        if "model" in timed
        else ""
    )
    return (
        " *train (s)*: the first training stage's loops alone (not its validation passes, nor a second stage such "
        "as the VQ-VAE's code prior); *cell (s)*: the whole cell's wall time, those and the evaluation included; "
        "*train (ms/image)* the median over epochs (the first left out) "
        "of the training loop's wall time per training image, while the run's other cells shared the machine; "
        "*sample (ms/image)*: `bench perf sample`, the median of repeated timings of the cell's own sampler "
        + (f"({samplers}) " if samplers else "")
        + f"generating {settings('sample_images')} images in batches of {settings('sample_batch')} on one CPU "
        f"thread ({'; '.join(cpus)}; 1-minute load average when measured, the timing process's own included: "
        f"{_span(load)}); each row the mean over its timed cells ({len(timed)} of the "
        f"{int((frame['status'] == 'done').sum())} done cells timed)."
    )


def _span(values: pd.Series) -> str:
    if values.empty:
        return "not recorded"
    low, high = values.min(), values.max()
    return f"{low:.1f}" if f"{low:.1f}" == f"{high:.1f}" else f"{low:.1f}-{high:.1f}"


def _summary_section(frame: pd.DataFrame, found, axes: list[str], question, by, ranked: list[str], assets: Path) -> str:
    """The question answered at a glance: a row per level of its axis, with a compact letter display; where
    no metric may be averaged over the whole grid, a row per level of its axis within each level of the first
    `by` axis (the findings' own split), the letters from that level's comparisons."""
    asked = [m for m in question.metrics if m in ranked]
    family = "all" if question.holm == "across_metrics" else "metric"
    if family == "all":  # the letters from the same family as the answers
        found = comparisons(frame, axes, asked, family="all")
    table, within = summary_frame(frame, found, axes, question.axis, asked), None
    if not _metric_columns(table, question.axis):
        within = next((a for a in by if a != question.axis), None)
        table = _summary_within(frame, axes, within, question.axis, asked, family) if within else table
    if not _metric_columns(table, question.axis, within):
        return ""
    return f"## At a glance\n\n{_summary_text(question, within)}\n\n" + report_table(
        table, assets, "summary", _summary_caption(question, within)
    )


def _metric_columns(table: pd.DataFrame, axis: str, within: str | None = None) -> list[str]:
    return [c for c in table.columns if c not in (axis, within, "cells")]


def _summary_text(question, within: str | None) -> str:
    if within is None:
        rows = (
            f"One row per level of `{question.axis}`, each metric as mean ± 95% t-interval over every cell of the "
            "level (all other axes' levels and seeds); in brackets a compact letter display"
        )
    else:
        rows = (
            f"One row per level of `{question.axis}` at each {within} (these metrics are not compared across "
            f"{within}: see the findings), each metric as mean ± 95% t-interval over the row's cells; in brackets a "
            f"compact letter display within each {within} (Holm's correction within it, as in the findings)"
        )
    return (
        f"{question.text} {rows}: levels that share a letter are not significantly different after Holm's "
        "correction (or had too few seeds for a test), `a` marks the group of the best mean, the best mean is in bold."
    )


def _summary_caption(question, within: str | None) -> str:
    cells = f"the cells of each level at each {within}" if within else "every cell of each level"
    return (
        f"{question.text} Mean and 95% t-interval over {cells}; levels sharing a letter are not significantly "
        "different (Holm) or were not tested."
    )


def _summary_within(
    frame: pd.DataFrame, axes: list[str], within: str, axis: str, metrics: list[str], family: str
) -> pd.DataFrame:
    """The summary table at each level of `within`, stacked, each level's letters from its own comparisons."""
    tables = []
    for level, part, rest in levels_of(frame, axes, within):
        if not (part["status"] == "done").any():
            continue
        table = summary_frame(part, comparisons(part, rest, metrics, family), rest, axis, metrics)
        tables.append(table.assign(**{within: level})[[within, *table.columns]])
    return pd.concat(tables, ignore_index=True).fillna("-") if tables else pd.DataFrame()


def _reference_section(frame: pd.DataFrame, assets: Path) -> str:
    """The floor and ceiling of the sample metrics, measured with the same instrument at the same n."""
    done = frame[frame["status"] == "done"]
    if "fid_domain_floor" not in done or done["fid_domain_floor"].isna().all():
        return ""
    samples = sample_count(frame)
    rows = []
    keys = ["dataset", "image_px"] if "dataset" in done and done["dataset"].nunique() > 1 else ["image_px"]
    for key, part in done.groupby(keys, sort=True):  # each data set has its own instrument: never pooled
        *dataset, size = key if isinstance(key, tuple) else (key,)
        rows.append(
            {
                **({"dataset": dataset[0]} if dataset else {}),
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
        + report_table(pd.DataFrame(rows), assets, "reference", caption)
    )


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
            per_cell = stored_values(files, part, metric)
            if not per_cell:
                continue
            key = key if isinstance(key, tuple) else (key,)
            row = {**dict(zip(groups, key)), "n": len(per_cell)}
            row.update({name: f"{np.mean([v[name] for v in per_cell if name in v]):.3f}" for name in per_cell[0]})
            if metric == "generative_accuracy_per_class":
                row["ECE"] = fmt(part["generative_ece"].mean())
            rows.append(row)
        if rows:
            blocks.append(f"{title}, mean over seeds:\n\n" + report_table(pd.DataFrame(rows), assets, metric, caption))
    if not blocks:
        return ""
    return "<details><summary>Per class</summary>\n\n" + "\n".join(blocks) + "\n</details>\n"


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
            report_table(table.drop(columns="cells"), assets, name, f"Ranking agreement with {other_store.root}."),
        ]
    )


_register_sections()

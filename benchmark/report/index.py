"""The findings index, reports/README.md: one line per question a published grid answers, written from
each report's comparisons when it is rendered (reports/<grid>/question.json), so it never says more
than the report does."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from benchmark.fileio import write_json, write_text

INDEX = "README.md"
QUESTION_FILE = "question.json"
OVERVIEW_FILE = "overview.json"
README_START = "<!-- published results: written by bench report from reports/*/overview.json; do not edit -->"
README_END = "<!-- end of published results -->"


def scale_text(frame: pd.DataFrame) -> str:
    """Training images, epochs, seeds and image size of a report's done cells, e.g. '10,000 training
    images, 6 epochs, 3 seeds, 28 px'."""
    done = frame[frame["status"] == "done"]

    def values(column: str, show) -> str:
        found = sorted({None if pd.isna(v) else int(v) for v in done[column]}, key=lambda v: (v is None, v))
        return " / ".join(show(v) for v in found)

    images = values("train_images", lambda v: "all" if v is None else f"{v:,}")
    epochs = values("trained_epochs", str)
    if "stopped" in done and (done["stopped"] == "early_stopping").any():
        epochs = f"up to {epochs}"  # a budget: early stopping ended some cells sooner
    seeds = done["seed"].nunique() if "seed" in done else 1
    size = values("image_px", lambda v: f"{v} px")
    return f"{images} training images, {epochs} epochs, {seeds} seed{'s' * (seeds != 1)}, {size}"


def write_question(
    assets: Path, question, answer: str, answers: list[str], scale: str, report: str, beyond_cpu: str = ""
) -> None:
    entry = {"question": question.text, "answer": answer, "answers": answers, "scale": scale, "report": report}
    if beyond_cpu:
        entry["beyond_cpu"] = beyond_cpu.strip()
    write_json(assets / QUESTION_FILE, entry)


def write_index(out: Path) -> Path:
    """reports/README.md from every rendered report's question, then the reports that answer none."""
    entries = sorted((json.loads(p.read_text()) for p in out.glob(f"*/{QUESTION_FILE}")), key=lambda e: e["question"])
    answered = {e["report"] for e in entries}
    lines = [
        "# Findings index\n",
        "One entry per question a published grid answers, written by `bench report` from that report's "
        "Holm-corrected paired comparisons (nothing here is typed by hand): the best level of the axis in "
        "question on each metric, what it beats significantly and what it does not, at the scale stated. "
        "Read the report before quoting a line: its findings, protocol and caveats come with it.\n",
    ]
    for entry in entries:
        lines.append(f"## {entry['question']}\n")
        if entry.get("answer"):
            lines.append(f"**Answer**: {entry['answer']}\n")
        if entry.get("beyond_cpu"):
            lines.append(f"**Beyond CPU**: {entry['beyond_cpu']}\n")
        lines += [f"- {answer}" for answer in entry["answers"]]
        lines.append(f"\nScale: {entry['scale']}. Report: [{entry['report']}]({entry['report']})\n")
    overviews = {json.loads(p.read_text())["report"]: json.loads(p.read_text()) for p in out.glob(f"*/{OVERVIEW_FILE}")}
    others = sorted(p.name for p in out.glob("*.md") if p.name != INDEX and p.name not in answered)
    checks = [name for name in others if (overviews.get(name) or {}).get("pipeline_check")]
    if checks:
        lines.append("## Pipeline checks\n")
        lines.append("Grids that exercise the machinery end to end; they answer no question.\n")
        lines += [f"- [{name}]({name}): {overviews[name]['pipeline_check'].strip()}" for name in checks]
        lines.append("")
    others = [name for name in others if name not in checks]
    if others:
        lines.append("## Other reports\n")
        lines += [f"- [{name}]({name})" for name in others]
        lines.append("")
    path = out / INDEX
    write_text(path, "\n".join(lines))
    return path


def write_overview(assets: Path, overview: dict) -> None:
    write_json(assets / OVERVIEW_FILE, overview)


def results_block(out: Path) -> str:
    """The README's list of published results, from every rendered report's overview (no number typed)."""
    entries = sorted((json.loads(p.read_text()) for p in out.glob(f"*/{OVERVIEW_FILE}")), key=lambda e: e["report"])
    lines = [README_START, ""]
    for entry in entries:
        cost = f", {entry['cell_minutes']:,} min of cell time" if entry.get("cell_minutes") is not None else ""
        converged = f"; {entry['converged']}" if entry["converged"] else ""
        lines.append(
            f"- [{out.name}/{entry['report']}]({out.name}/{entry['report']}): {entry['title']} "
            f"{entry['cells']} cells{cost}{converged}. Scale: {entry['scale']}."
        )
        if entry["published"]:
            lines += ["", "  | cells | metric | published | here | difference |", "  |---|---|---|---|---|"]
            lines += [
                f"  | {r['cells']} | {r['metric']} | {r['published']} | {r['here']} | {r['difference']} |"
                for r in entry["published"]
            ]
            lines.append("")
    return "\n".join([*lines, "", README_END])


def write_readme_results(out: Path) -> Path | None:
    """Rewrite the block between the markers of the README beside the reports folder (none: untouched)."""
    readme = out.resolve().parent / "README.md"
    if not readme.is_file():
        return None
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return None
    head, rest = text.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    write_text(readme, head + results_block(out) + tail)
    return readme


def write_indexes(out: Path) -> list[Path]:
    """The findings index and the README's list of published results, from the reports; the files written."""
    index = write_index(out)
    readme = write_readme_results(out)
    return [index, *([readme] if readme else [])]

"""The Figures section of a report: metrics against each axis, heatmap, training and learning curves,
reliability, image grids of the cells and latent figures, each a FIGURES entry drawn from one FigurePlan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from benchmark.drawing import display_scale, grid_png, interpolation_png, upscaled_png
from benchmark.fileio import atomic_write
from benchmark.metrics.registry import metric_specs
from benchmark.registry import MODELS, Registry
from benchmark.report import figures, latents
from benchmark.report.comparability import (
    dependence,
    fields_changing_with,
    finding_metrics,
    hides_pixels,
    metrics_along,
)
from benchmark.report.context import MECHANISM_AXIS, Report, first_done, legacy_protocol, stored_values
from benchmark.report.frame import CellFiles
from benchmark.report.stats import along_text, compared_axes, fmt
from benchmark.store.cells import CHECKPOINT
from benchmark.training.trainer import load_stored_cell


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

    def curve_axes(self) -> tuple[str | None, list[str]]:
        """The colour of the training and learning curves, and the other axes (a row per level of the first):
        never a colour that sets a per-image loss's scale where another axis can take its place."""
        curve_hue = self.hue or (self.varying[0] if self.varying else None)
        logs = self.report.logs
        rest = [a for a in self.groups if a != curve_hue and a in logs]
        if curve_hue in _SCALE_FIELDS and rest and not self.hue:  # per-image sums of two scales in one panel: swap
            curve_hue, rest = rest[0], [curve_hue, *rest[1:]]
        rest.sort(key=lambda a: a not in _SCALE_FIELDS)  # a row per level of what sets the loss's scale
        return curve_hue, rest


Figure = Callable[[FigurePlan], list[str]]


# The figures of a report's Figures section in order; each draws its files and returns its markdown lines
# (none where the cells give it nothing to draw).
FIGURES: Registry[Figure] = Registry("report figure")


def _hue(varying: list[str]) -> str | None:
    """Curves are coloured by conditioning mode; where the model varies with it (the model family: the VAE
    and the VQ-VAE hold conditioning none), by model, which a colour by mode would pool."""
    if MECHANISM_AXIS not in varying:
        return None
    return "model" if "model" in varying else MECHANISM_AXIS


def figure_section(r: Report) -> str:
    done = r.frame[r.frame["status"] == "done"]  # an axis whose other levels are pending draws as one level
    varying = [a for a in r.axes if a != "seed" and done[a].nunique() > 1]
    plan = FigurePlan(
        r,
        shown=finding_metrics(r.frame, [m for m in r.metrics if metric_specs()[m].better])[0],
        varying=varying,
        hue=_hue(varying),
        groups=compared_axes(done, r.axes),
        spread=spread_text(r.frame),
    )
    lines = ["## Figures\n"]
    for name in FIGURES.names():
        lines += FIGURES[name](plan)
    return "\n".join(lines)


@FIGURES.register("metrics against each axis")
def _metrics_figures(f: FigurePlan) -> list[str]:
    frame, lines = f.report.frame, []
    for axis, along in f.groups.items():
        coloured = axis == f.hue and len(f.groups) > 1  # drawn as the colour of the other axes' figures
        others = [a for a in f.groups if a != axis]
        colour = f.hue if f.hue in others else (others[0] if others else None)
        pooled = [a for a in others if a != colour]
        drawn, left_out = _drawable(frame, f.groups, [axis, colour], f.shown)
        spread = f.spread + (f"; each seed's value the mean over {' and '.join(pooled)}" if pooled else "")
        if drawn and not coloured:
            filename = f"metrics_vs_{axis}.png"
            figures.metrics_against_axis(frame, axis, colour, drawn, f.report.assets / filename)
            by = f", by {colour}" if colour else ""
            lines.append(f.image(filename, f"Metrics against {axis}{along_text(along)}{by}; {spread}{left_out}"))
        within = _drawable_within(frame, f.groups, axis, colour, [m for m in f.shown if m not in drawn])
        if within:
            filename = f"metrics_vs_{axis}_by_{colour}.png"
            figures.metrics_against_axis(frame, axis, None, within, f.report.assets / filename, row=colour)
            caption = (
                f"Metrics against {axis}{along_text(along)}, a row per {colour}, each panel with its own scale "
                f"({', '.join(within)}: not comparable across {colour}, see the findings); {spread}"
            )
            lines.append(f.image(filename, caption))
    return lines


def _drawable_within(frame: pd.DataFrame, groups: dict, axis: str, facet: str | None, metrics: list[str]) -> list:
    """Of `metrics`, those whose value depends by definition on a field `facet` changes (an image size) and
    that a figure may draw along `axis` within each level of `facet`; none equal in every cell."""
    if facet is None:
        return []
    done = frame[frame["status"] == "done"]
    changed = (facet, *groups.get(facet, ()), *fields_changing_with(frame, facet, groups.get(facet, ())))
    metrics = [m for m in metrics if dependence(m, changed) and done[m].dropna().nunique() > 1]
    for _, part in frame.groupby(facet, sort=False):
        compared = metrics_along(part, axis, groups.get(axis, ()), metrics)[0]
        metrics = [m for m in metrics if m in compared]
    return metrics


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
        if not legacy_protocol(r.files, frame):
            return []
        return [  # per-epoch logs not published: nothing to draw from
            "*Training curves: not drawn. These cells' per-epoch logs were not published with the report; the "
            "figures first published with it were drawn under older figure rules "
            f"(`git log -- reports/{r.grid.name}/`).*\n"
        ]
    curve_hue, rest = f.curve_axes()
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
    figures.learning_curves(logs, f.curve_axes()[0], tested, published, f.report.assets / "learning_curves.png")
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
    return _latent_figures(r.store, r.frame, r.axes, r.assets, r.grid.name, r.data_dir, r.published_folder)


@FIGURES.register("model figures")
def _model_figure_lines(f: FigurePlan) -> list[str]:
    """Where the model varies: each model's interpolation strip, and an autoencoder's N(0, I)-code samples
    beside its fitted-density samples (shown with the cells), from the first shown cell of each model."""
    r = f.report
    reps = _representatives(r.frame, r.axes)
    if "model" not in f.varying or reps.empty or hides_pixels(r.frame):  # an image task: completions instead
        return []
    lines = []
    for model, cells in reps.groupby("model", sort=False):
        if MODELS[model].interpolated is None:  # no latent to move along (the deterministic baseline)
            continue
        row = next(cells.itertuples())
        others = ", ".join(f"{a}={getattr(row, a)}" for a in r.axes if a not in ("model", "seed"))
        shown = f"`{row.cell}`" + (f" ({others}, seed {row.seed})" if others else f" (seed {row.seed})")
        drawn = _draw_model_figures(r, row) if (r.store.cell_dir(row.cell) / CHECKPOINT).exists() else None
        conditioned = (r.files[row.cell].config or {}).get("cell", {}).get("conditioning", "none") != "none"
        for kind, caption in _model_captions(model, conditioned).items():
            filename = f"{kind}_{model}.png"
            if (drawn is not None and kind in drawn) or (
                drawn is None and _keep_published(r.published_folder, r.assets, filename)
            ):
                lines.append(f"![{kind} {model}]({r.grid.name}/{filename})\n\n*{caption} Cell: {shown}.*\n")
    return lines


def _model_captions(model: str, conditioned: bool) -> dict[str, str]:
    """`conditioned`: the model's networks take the condition (its decoder is given the first image's)."""
    entry = MODELS[model]
    held = "; the condition held at the first image's" if conditioned else "; its decoder takes no condition"
    captions = {
        "interpolation": f"Interpolation, model {model}: ten steps along a straight line between "
        f"{entry.interpolated}, decoded (three pairs of test images, a row each{held})."
    }
    if hasattr(entry, "sample_unit_codes"):
        captions["unit_code_samples"] = (
            f"Samples of model {model} with codes drawn from N(0, I) instead of its fitted Gaussians (the "
            "samples shown with its cell): a row per class (or the first 20 test conditions, 10 a row); "
            "fid_domain_unit_codes and cond_acc_unit_codes measure them."
        )
    return captions


def _draw_model_figures(r: Report, row) -> set[str]:
    """Draw a model's figures from its checkpoint into the report's folder; the kinds drawn."""
    trained = load_stored_cell(r.store, row.cell, r.data_dir)
    model, scale = trained.model, display_scale(row.image_px)
    pngs = {"interpolation": interpolation_png(model, trained.bundle.test.images, trained.conditions.test)}
    if hasattr(model, "sample_unit_codes"):
        classes = trained.conditions.source.num_classes
        conditions = torch.arange(classes).repeat_interleave(10) if classes else trained.conditions.test[:20]
        images = model.sample_unit_codes(conditions, torch.Generator().manual_seed(0))
        pngs["unit_code_samples"] = grid_png(images, 10)
    for kind, png in pngs.items():
        data = upscaled_png(png, scale)
        atomic_write(r.assets / f"{kind}_{row.model}.png", lambda tmp, d=data: tmp.write_bytes(d))
    return set(pngs)


_SCALE_FIELDS = ("image_size", "dataset", "task", "recon_loss", "binarize")  # change a per-image loss's scale


def spread_text(frame: pd.DataFrame) -> str:
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
        rows = stored_values(files, part, "generative_reliability")
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
    level of every axis but the mechanism and model axes (so every mechanism and model still shows)."""
    done = frame[frame["status"] == "done"]
    first_seed = done["seed"].min() if "seed" in done else None
    reps = done[done["seed"] == first_seed] if first_seed is not None else done
    if len(reps) > MAX_SHOWN_CELLS:
        for axis in axes:
            if axis not in ("seed", MECHANISM_AXIS, "model") and len(reps) > MAX_SHOWN_CELLS:
                reps = reps[reps[axis] == reps[axis].iloc[0]]  # the first level with a done cell
    return reps.head(MAX_SHOWN_CELLS)


def _cell_images(r: Report, best_metric=None) -> list[str]:
    store, frame, axes, assets, name, published = r.store, r.frame, r.axes, r.assets, r.grid.name, r.published_folder
    first = first_done(r.files, frame)
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
            elif _keep_published(published, assets, shown) or _keep_from_other_report(published, assets, shown):
                present.append(kind)
        if not present:  # rendered from published data, and the published report did not show this cell
            continue
        images = " ".join(f"![{kind}]({name}/cells/{row.cell}-{kind}.png)" for kind in present)
        ignores = " (its model ignores the condition: the samples do not follow what each was drawn for)"
        ignores = ignores if _ignores(row) else ""
        lines.append(f"**{heading}{label or row.cell}** (`{row.cell}`){ignores}\n\n{images}\n")
    return lines


def _ignores(row) -> bool:
    """A cell whose model ignores the condition its samples were drawn for (not an image task: its samples
    are completions of given pixels)."""
    reads, task = getattr(row, "reads_condition", None), getattr(row, "task", None)
    return reads is not None and not pd.isna(reads) and not bool(reads) and (task is None or pd.isna(task))


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


def _keep_from_other_report(published: Path, assets: Path, name: str) -> bool:
    """A cell's image as another grid's report published it: a cell id names one config, so its image is the
    same wherever it was drawn (a cell restored from that report's data, `bench store restore`)."""
    for other in sorted(published.parent.glob(f"*/{name}")):
        if other.parent.parent != published:
            return _keep_published(other.parent.parent, assets, name)
    return False


def _latent_figures(store, frame, axes, assets: Path, name: str, data_dir, published: Path) -> list[str]:
    reps = _representatives(frame, axes)
    if MECHANISM_AXIS not in reps or "model" in axes:  # drawn per mechanism: across models they would mislabel
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


def _published_line_text(published: dict) -> str:
    epochs = published.get("epochs")
    return "; dashed: the published figure" + (f", reached after {epochs} epochs there" if epochs else "")

"""Grid files, validated with pydantic, expanded into cells.

A grid's cells are the cartesian product of its axes (axes in one `zip` group
vary together), times its seeds, minus the `exclude`d combinations. Every error
names the file, the key path and the value, and lists the valid choices.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from benchmark.config import CellConfig
from benchmark.errors import BenchError
from benchmark.fileio import canonical_json
from benchmark.grid.strict_yaml import load_yaml
from benchmark.metrics.protocol import EvalConfig

CELL_FIELDS = tuple(CellConfig.model_fields)


class Claim(BaseModel):
    """A published claim that one level of an axis beats another, checked by the report against this grid."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    axis: str
    better: Any
    worse: Any
    metrics: list[str] = Field(min_length=1)


class Question(BaseModel):
    """The question a grid answers, for the findings index: the axis it varies and the metrics that answer it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str
    axis: str
    metrics: list[str] = Field(min_length=1)
    holm: Literal["per_metric", "across_metrics"] = "per_metric"  # across_metrics: one family for them all


class GridSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    base: dict[str, Any] = {}
    axes: dict[str, list[Any]] = {}
    seeds: list[Annotated[int, Field(strict=True, ge=0)]] = Field(default=[0], min_length=1)
    exclude: list[dict[str, Any]] = []
    zip: list[list[str]] = []
    eval: EvalConfig = EvalConfig()
    # for reports: {source, metrics: {name: value}, where?, epochs?}, or {source, rows: [{where, metrics}]}
    published: dict[str, Any] | None = None
    match_params: bool = Field(default=False, strict=True)  # widen mechanisms to equal size (grid/matching.py)
    claims: list[Claim] = []
    findings_by: list[str] = []  # axes whose levels get findings of their own in reports (e.g. backbone)
    # metrics the results table shows beside the headline ones, neither ranked nor compared (what a question's
    # trade-off runs through: the KL and active units of a beta grid)
    shows: list[str] = []
    question: Question | None = None  # a line of reports/README.md, the findings index
    pipeline_check: str = ""  # why this grid checks the machinery and answers no question (the index lists it so)
    # what of the question two CPU cores cannot answer in a working day at an honest scale, and what it would
    # need (a GPU estimate): said in the report and in the index entry
    beyond_cpu: str = ""


@dataclass(frozen=True)
class Cell:
    """One fully resolved cell: what to train and how to evaluate it."""

    config: CellConfig
    eval: EvalConfig
    axis_values: tuple[tuple[str, Any], ...]  # the grid's varying fields, for tables

    @property
    def id(self) -> str:
        payload = {"cell": self.config.identity(), "eval": self.eval.model_dump(mode="json")}
        return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:12]

    def resolved(self) -> dict:
        return {"cell": self.config.model_dump(mode="json"), "eval": self.eval.model_dump(mode="json")}


@dataclass(frozen=True)
class Grid:
    """A grid file expanded into its cells. Its settings are the validated file (`spec`), the one place a
    setting lives: reports read `grid.spec.question`, `grid.spec.claims`, ... from it."""

    spec: GridSpec
    cells: tuple[Cell, ...]
    axes: tuple[str, ...]  # field names that vary, seed last
    source: str  # the file it came from
    overrides: tuple[str, ...] = ()  # --override KEY=VALUE applied on top of the file, as given

    @property
    def name(self) -> str:
        return self.spec.name


def _fail(source: str, where: str, value: Any, message: str) -> BenchError:
    shown = "" if value is _MISSING else f" = {value!r}"
    return BenchError(f"{source}: {where}{shown}: {message}")


_MISSING = object()


def _loc(parts) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _spec_error(source: str, err: ValidationError) -> BenchError:
    first = err.errors()[0]
    where = _loc(first["loc"]) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = f"unknown key; valid: {', '.join(_section_model(first['loc']).model_fields)}"
    more = len(err.errors()) - 1
    value = first.get("input", _MISSING) if first["type"] != "missing" else _MISSING
    return _fail(source, where, value, message + (f" (and {more} more errors)" if more else ""))


def _section_model(loc: tuple) -> type[BaseModel]:
    """The model whose keys are valid where an unknown key was found, e.g. Claim for claims[0].foo."""
    model = GridSpec
    for part in loc[:-1]:
        if isinstance(part, str):
            model = next(_models_in(model.model_fields[part].annotation))
    return model


def _models_in(annotation):
    """The pydantic models an annotation names, also inside list[...], X | None and the like."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in get_args(annotation):
        yield from _models_in(argument)


def parse_assignments(option: str, assignments: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings (values parsed as YAML) from a command-line option."""
    fields: dict[str, Any] = {}
    for text in assignments:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise BenchError(f"{option} {text!r}: expected KEY=VALUE")
        if key.strip() in fields:
            raise BenchError(f"{option} {text!r}: {key.strip()} is given twice")
        try:
            fields[key.strip()] = load_yaml(value)
        except yaml.YAMLError as err:
            raise BenchError(f"{option} {text!r}: value is not valid YAML ({str(err).splitlines()[0]})") from None
    return fields


def read_grid_text(path: Path) -> str:
    """The grid file's text, or a one-line error for a path that is not a readable UTF-8 file."""
    if not path.exists():
        raise BenchError(f"{path}: grid file not found")
    if not path.is_file():
        raise BenchError(f"{path}: not a file (a grid is a YAML file such as ablations/smoke.yaml)")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise BenchError(f"{path}: not a UTF-8 text file (byte {err.start}); a grid is a YAML file") from None
    except OSError as err:
        raise BenchError(f"{path}: cannot read ({err.strerror})") from None


def load_grid(path: str | Path, overrides: list[str] | None = None) -> Grid:
    """Read a grid file; `overrides` (KEY=VALUE) replace base fields of every cell, and eval.KEY=VALUE a
    setting of its evaluation protocol."""
    path = Path(path)
    text = read_grid_text(path)
    if "\x00" in text:
        raise BenchError(f"{path}: holds NUL bytes; a grid is a YAML text file")
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as err:
        raise BenchError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    if not isinstance(raw, dict):
        raise BenchError(f"{path}: a grid must be a mapping with keys name, base, axes, seeds, ...")
    for key, value in parse_assignments("--override", overrides or []).items():
        section, _, name = key.rpartition(".")
        if section not in ("", "eval"):
            raise BenchError(f"--override {key}={value}: expected a cell field (epochs=3) or eval.SETTING")
        if key in (raw.get("axes") or {}):
            raise BenchError(f"--override {key}={value}: {key} is an axis of {path}; use --only to pick values")
        target = section or "base"
        raw[target] = {**(raw.get(target) or {}), name: value}
    return replace(build_grid(raw, str(path)), overrides=tuple(overrides or ()))


def _check_cell_fields(spec: GridSpec, source: str) -> None:
    valid = ", ".join(f for f in CELL_FIELDS if f != "seed")
    places = [("base", spec.base), ("axes", spec.axes)] + [(f"exclude[{i}]", e) for i, e in enumerate(spec.exclude)]
    for where, fields in places:
        for key, value in fields.items():
            if key not in CELL_FIELDS or key == "seed":
                hint = " (seeds go in the top-level key 'seeds')" if key == "seed" else ""
                raise _fail(source, f"{where}.{key}", value, f"unknown cell field{hint}; valid: {valid}")
    if len(set(spec.seeds)) != len(spec.seeds):
        raise _fail(source, "seeds", spec.seeds, "duplicate seeds")


def build_grid(raw: dict, source: str) -> Grid:
    try:
        spec = GridSpec.model_validate(raw)
    except ValidationError as err:
        raise _spec_error(source, err) from None
    _check_cell_fields(spec, source)
    groups = _axis_groups(spec, source)
    made = []
    for combo in itertools.product(*[list(zip(*(spec.axes[a] for a in g))) for g in groups]):
        values = {axis: v for group, vals in zip(groups, combo) for axis, v in zip(group, vals)}
        if any(all(values.get(k, spec.base.get(k)) == v for k, v in ex.items()) for ex in spec.exclude):
            continue
        made += [_make_cell(spec, values, seed, source) for seed in spec.seeds]
    if spec.match_params:
        made = _matched(spec, made, source)
    cells, seen = [], {}
    for cell in made:
        if cell.id in seen:
            raise _fail(
                source,
                "axes",
                dict(cell.axis_values),
                f"duplicate cell (same model as {seen[cell.id]}: an axis varies a field this backbone, "
                "conditioning or condition ignores)",
            )
        seen[cell.id] = dict(cell.axis_values)
        cells.append(cell)
    if not cells:
        raise _fail(source, "exclude", spec.exclude, "every cell is excluded; the grid is empty")
    axes = tuple(a for g in groups for a in g) + ("seed",)
    _check_report_settings(spec, source)
    return Grid(spec, tuple(cells), axes, source)


def _check_ranked(metrics: list[str], where: str, source: str) -> None:
    """Reports compare the ranked headline metrics (the columns of their tables)."""
    from benchmark.metrics.registry import metric_specs

    ranked = [name for name, m in metric_specs().items() if m.better and m.headline]
    for j, metric in enumerate(metrics):
        if metric not in ranked:
            raise _fail(source, f"{where}[{j}]", metric, f"not a ranked headline metric; valid: {', '.join(ranked)}")


def _check_report_settings(spec: GridSpec, source: str) -> None:
    """findings_by, the question and the claims name axes, values and ranked metrics of this grid."""
    for i, axis in enumerate(spec.findings_by):
        if axis not in spec.axes:
            raise _fail(source, f"findings_by[{i}]", axis, f"not an axis; axes: {', '.join(spec.axes)}")
    if spec.shows:
        from benchmark.metrics.registry import metric_specs

        for i, metric in enumerate(spec.shows):
            if metric not in metric_specs():
                raise _fail(source, f"shows[{i}]", metric, f"unknown metric; known: {', '.join(metric_specs())}")
    if spec.question is not None and spec.pipeline_check:
        raise _fail(source, "pipeline_check", spec.pipeline_check, "a pipeline check answers no question; drop one")
    if spec.question is not None:
        if spec.question.axis not in spec.axes:
            axes = ", ".join(spec.axes)
            raise _fail(source, "question.axis", spec.question.axis, f"not an axis; axes: {axes}")
        _check_ranked(spec.question.metrics, "question.metrics", source)
    for i, claim in enumerate(spec.claims):
        if claim.axis not in spec.axes:
            raise _fail(source, f"claims[{i}].axis", claim.axis, f"not an axis; axes: {', '.join(spec.axes)}")
        for key in ("better", "worse"):
            value = getattr(claim, key)
            if value not in spec.axes[claim.axis]:
                valid = ", ".join(map(str, spec.axes[claim.axis]))
                raise _fail(source, f"claims[{i}].{key}", value, f"not a value of axis {claim.axis}; valid: {valid}")
        if claim.better == claim.worse:
            raise _fail(source, f"claims[{i}].worse", claim.worse, "the same level as better; a claim compares two")
        _check_ranked(claim.metrics, f"claims[{i}].metrics", source)
    if spec.published is not None:
        _check_published(spec.published, spec, source)


def _check_published(published: dict, spec: GridSpec, source: str) -> None:
    """Published figures name known metrics, and the cells they describe by axes of this grid."""
    from benchmark.metrics.registry import metric_specs

    rows = published.get("rows")
    entries = [("published", published)] if rows is None else [(f"published.rows[{i}]", r) for i, r in enumerate(rows)]
    for where, entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("metrics"), dict):
            raise _fail(source, where, entry, "expected a mapping with metrics: {METRIC: VALUE}")
        for metric, value in entry["metrics"].items():
            if metric not in metric_specs():
                raise _fail(
                    source, f"{where}.metrics.{metric}", value, f"unknown metric; known: {', '.join(metric_specs())}"
                )
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise _fail(source, f"{where}.metrics.{metric}", value, "expected a number")
        for axis, value in (entry.get("where") or {}).items():
            if axis not in spec.axes or value not in spec.axes[axis]:
                raise _fail(source, f"{where}.where.{axis}", value, f"not a value of an axis; axes: {spec.axes}")


def _matched(spec: GridSpec, cells: list[Cell], source: str) -> list[Cell]:
    """The cells with every mechanism widened to its group's largest model (grid/matching.py)."""
    from benchmark.grid.matching import match_parameters

    if "width_scale" in spec.base or "width_scale" in spec.axes:
        where = "base.width_scale" if "width_scale" in spec.base else "axes.width_scale"
        raise _fail(
            source,
            where,
            spec.base.get("width_scale", spec.axes.get("width_scale")),
            "match_params sets width_scale itself; remove one of them",
        )
    configs = match_parameters([cell.config for cell in cells], source)
    return [replace(cell, config=config) for cell, config in zip(cells, configs)]


def _axis_groups(spec: GridSpec, source: str) -> list[tuple[str, ...]]:
    zipped_axes = {axis for group in spec.zip for axis in group}
    for axis, values in spec.axes.items():
        if not values:
            raise _fail(source, f"axes.{axis}", values, "empty axis: give at least one value")
        # a zipped axis may repeat a value (model cvae with and without the condition): its group's rows may not
        if axis not in zipped_axes and len({canonical_json(v) for v in values}) != len(values):
            raise _fail(source, f"axes.{axis}", values, "duplicate values: each cell would appear twice")
        if axis in spec.base:
            raise _fail(source, f"axes.{axis}", values, "field is set in base too; keep it in one place")
    zipped: set[str] = set()
    for i, group in enumerate(spec.zip):
        for axis in group:
            if axis not in spec.axes:
                raise _fail(source, f"zip[{i}]", axis, f"not an axis; axes: {', '.join(spec.axes)}")
        lengths = {len(spec.axes[a]) for a in group}
        if len(lengths) > 1:
            raise _fail(source, f"zip[{i}]", group, "axes zipped together need lists of equal length")
        rows = [canonical_json(row) for row in zip(*(spec.axes[a] for a in group))]
        if len(set(rows)) != len(rows):
            raise _fail(source, f"zip[{i}]", group, "duplicate rows of values: each cell would appear twice")
        zipped |= set(group)
    groups = [tuple(g) for g in spec.zip] + [(a,) for a in spec.axes if a not in zipped]
    return groups


def _make_cell(spec: GridSpec, values: dict, seed: int, source: str) -> Cell:
    fields = {**spec.base, **values, "seed": seed}
    try:
        config = CellConfig(**fields)
    except ValidationError as err:
        first = err.errors()[0]
        key = _loc(first["loc"])
        if key:
            where = f"axes.{key}" if first["loc"][0] in values else f"base.{key}"
            value = first.get("input", _MISSING)
        else:  # a rule across fields
            where = "cell " + ", ".join(f"{k}={v}" for k, v in values.items()) if values else "base"
            value = _MISSING
        raise _fail(source, where, value, first["msg"].removeprefix("Value error, ")) from None
    config = config.canonical()
    axis_values = tuple((k, values[k]) for k in values) + (("seed", seed),)
    return Cell(config, spec.eval, axis_values)


def single_cell_grid(assignments: list[str]) -> Grid:
    """`bench run --set key=value ...`: one cell without a grid file."""
    fields = parse_assignments("--set", assignments)
    seed = fields.pop("seed", 0)
    raw = {"name": "adhoc", "base": fields, "seeds": [seed]}
    return build_grid(raw, "--set")

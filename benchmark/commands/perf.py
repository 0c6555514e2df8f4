"""`bench perf`: speed measurements (never run inside tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from benchmark.commands.common import RESULTS, DataDir, GridFile, Only, Overrides, Results, console, resolve_grid
from benchmark.errors import BenchError

app = typer.Typer(no_args_is_help=True, help="Speed measurements (never run inside tests).")
Opt = typer.Option


@app.command("eval")
def perf_eval(
    n_samples: Annotated[int, Opt("--n-samples", min=1)] = 10_000,
    nll_k: Annotated[int, Opt("--nll-k", min=1, help="Importance samples per image (the literature: 5,000).")] = 100,
    nll_size: Annotated[int, Opt("--nll-size", min=0, help="Test images for the likelihoods; 0 = all.")] = 500,
    device: Annotated[str, Opt("--device")] = "cpu",
    data_dir: DataDir = None,
) -> None:
    """Time the evaluation protocol on one 28x28 cell (Inception FID aside)."""
    from benchmark.perf.eval_timing import time_evaluation
    from benchmark.runner.preflight import check_data_dir, check_device

    check_device(device)
    check_data_dir(data_dir)
    console.print_json(json.dumps(time_evaluation(n_samples, device, data_dir, nll_k, nll_size or None)))


@app.command("train")
def perf_train(
    images: Annotated[int, Opt("--images", min=128, help="Training images per measurement.")] = 12_800,
    pack: Annotated[int, Opt("--pack", min=2, help="Cells in the packed measurement.")] = 4,
    device: Annotated[str, Opt("--device")] = "auto",
    out: Annotated[Path, Opt("--out")] = Path("reports/perf.md"),
    data_dir: DataDir = None,
) -> None:
    """Images per second of a tutorial loop, the trainer and packed training; writes reports/perf.md."""
    from benchmark.fileio import write_text
    from benchmark.perf.train_speed import render_markdown, run_perf
    from benchmark.runner.preflight import check_data_dir, check_device, check_output_file

    check_output_file(out, "--out", ".md")
    check_device(device)
    check_data_dir(data_dir)
    text = render_markdown(run_perf(images, pack, device, data_dir=data_dir))
    write_text(out, text)
    console.print(text)
    console.print(f"wrote {out}")


@app.command("cell")
def perf_cell(
    grid: Annotated[Path, Opt("--grid", help="Grid YAML whose cells to time.")],
    override: Overrides = [],
    only: Annotated[list[str], Opt("--only", help="Keep cells with KEY=VALUE (repeatable); the first are timed.")] = [],
    epochs: Annotated[int, Opt("--epochs", min=2, help="Epochs per cell (the first is not counted).")] = 3,
    workers: Annotated[int, Opt("--workers", min=1, help="Cells at a time, as bench run --workers.")] = 1,
    out: Annotated[Path | None, Opt("--out", help="Also write the tables to this .md file.")] = None,
    data_dir: DataDir = None,
) -> None:
    """A real cell of a grid trained through bench run's path beside the trainer as bench perf times it (CPU)."""
    from benchmark.fileio import write_text
    from benchmark.perf.cell_speed import QUICK_EVAL, measure_cells, render_markdown
    from benchmark.runner.grid_run import filter_cells
    from benchmark.runner.preflight import check_data_dir, check_output_file

    if out is not None:
        check_output_file(out, "--out", ".md")
    spec = resolve_grid(grid, [], [*override, f"epochs={epochs}", *QUICK_EVAL])
    cells = filter_cells(spec.cells, only)[:workers]
    if len(cells) < workers:
        raise BenchError(f"--workers {workers}: the grid has only {len(cells)} cell(s) left to time side by side")
    check_data_dir(data_dir)
    text = render_markdown(spec, measure_cells(spec, cells, workers, data_dir), workers)
    if out is not None:
        write_text(out, text)
    console.print(text)


@app.command("layout")
def perf_layout(
    grid: Annotated[Path, Opt("--grid", help="Grid YAML whose cell to time.")],
    override: Overrides = [],
    only: Annotated[list[str], Opt("--only", help="Keep cells with KEY=VALUE (repeatable); the first is timed.")] = [],
    steps: Annotated[int, Opt("--steps", min=1, help="Training steps per run.")] = 20,
    repeats: Annotated[int, Opt("--repeats", min=1, help="Runs per layout, alternating; the median is kept.")] = 3,
    threads: Annotated[int, Opt("--threads", min=1, help="torch CPU threads (bench run --threads).")] = 1,
    out: Annotated[Path | None, Opt("--out", help="Also write the tables to this .md file.")] = None,
    data_dir: DataDir = None,
) -> None:
    """A conv cell's training step, contiguous beside channels_last (how conv models are built), profiled (CPU)."""
    from benchmark.fileio import write_text
    from benchmark.models.backbones import BACKBONES
    from benchmark.perf.layout_speed import measure_layouts, render_markdown
    from benchmark.runner.grid_run import filter_cells
    from benchmark.runner.preflight import check_data_dir, check_output_file
    from benchmark.runner.reference import label

    if out is not None:
        check_output_file(out, "--out", ".md")
    spec = resolve_grid(grid, [], override)
    cell = filter_cells(spec.cells, only)[0]
    if BACKBONES[cell.config.backbone].flat_input:
        raise BenchError(f"--grid {grid}: cell {label(cell)} has backbone {cell.config.backbone}, no convolutions")
    check_data_dir(data_dir)
    text = render_markdown(measure_layouts(cell.config, steps, repeats, threads, data_dir), label(cell))
    if out is not None:
        write_text(out, text)
    console.print(text)


@app.command("sample")
def perf_sample(
    grid: GridFile = None,
    override: Overrides = [],
    only: Only = [],
    images: Annotated[int, Opt("--images", min=1, help="Images generated per measurement.")] = 1_000,
    batch: Annotated[int, Opt("--batch", min=1, help="Images per sampler call.")] = 100,
    repeats: Annotated[int, Opt("--repeats", min=1, help="Measurements per cell; their median is kept.")] = 3,
    results: Results = RESULTS,
    data_dir: DataDir = None,
) -> None:
    """Time each done cell's sampler on one CPU thread and record it beside the cell (reports show it)."""
    from rich.table import Table

    from benchmark.perf.sample_speed import time_grid_sampling
    from benchmark.runner.grid_run import filter_cells
    from benchmark.runner.preflight import check_data_dir, check_store

    spec = resolve_grid(grid, [], override)
    store = check_store(results)
    check_data_dir(data_dir)
    cells = {c.id: dict(c.axis_values) for c in filter_cells(spec.cells, only)}
    table = Table("cell", *spec.axes, "ms per image", "runs")
    for cell_id, timing in time_grid_sampling(store, list(cells), data_dir, images, batch, repeats):
        runs = ", ".join(f"{r:.3f}" for r in timing["runs_ms_per_image"])
        values = [str(cells[cell_id].get(a)) for a in spec.axes]
        table.add_row(cell_id, *values, f"{timing['ms_per_image']:.3f}", runs)
    if not table.row_count:
        raise BenchError(f"--results {results}: no done cell of grid {spec.name} with a checkpoint; nothing to time")
    console.print(table)
    console.print(f"recorded in each cell's sample_timing.json ({results}); one thread, {images} images per run")

"""The `bench` command line. Each command is a thin layer over a package function."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from benchmark import __version__
from benchmark.errors import BenchError, Preempted

try:
    from typer._click import exceptions as parser_errors  # typer >= 0.29 bundles its own click
except ImportError:  # pragma: no cover - older typer on plain click
    from click import exceptions as parser_errors

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="CVAE Bench: train, measure and compare conditional VAEs over ablation grids.",
)
data_app = typer.Typer(no_args_is_help=True, help="Inspect data sets.")
app.add_typer(data_app, name="data")
# Off a terminal (CI logs, pipes) rich would wrap tables at 80 columns; give them room.
console = Console() if Console().is_terminal else Console(width=200)

MAX_SAMPLES = 1024  # one PNG grid; 1024 RGB 256 px samples are about 0.8 GB of floats
DataDirOption = typer.Option(None, "--data-dir", help="Data directory (default: $BENCH_DATA_DIR, else the user cache).")


def _version(value: bool) -> None:
    if value:
        console.print(f"bench {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """CVAE Bench."""


@data_app.command("check")
def data_check(data_dir: Path = DataDirOption) -> None:
    """Counts, shapes, checksums and mean pixel value of every data set found."""
    from benchmark import paths
    from benchmark.data.check import check_data_dir, expected_folders

    root = paths.data_dir(data_dir)
    rows = check_data_dir(root)
    if not rows:
        raise BenchError(f"{root}: no data set found (expected {expected_folders()})")
    table = Table(title=f"Data sets in {root}")
    for column in ("data set", "split", "images", "shape", "captions", "mean pixel", "checksum"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r.dataset,
            r.split,
            "-" if r.images is None else f"{r.images:,}",
            r.shape,
            "-" if r.captions is None else f"{r.captions:,}",
            "-" if r.mean_pixel is None else f"{r.mean_pixel:.4f}",
            r.checksum if r.checksum == "OK" or r.checksum.startswith("OK ") else f"[red]{r.checksum}",
        )
    console.print(table)
    for r in rows:
        if r.error:
            console.print(f"[red]{r.dataset} {r.split}: {r.error}", soft_wrap=True)
    if any(r.error or "MISMATCH" in r.checksum or "missing" in r.checksum for r in rows):
        raise typer.Exit(1)


@data_app.command("export-amat")
def data_export_amat(
    out: Path = typer.Option(..., "--out", help="Folder for binarized_<data set>_{train,valid,test}.amat."),
    dataset: str = typer.Option("mnist", "--dataset", help="A grey 28 px data set (mnist, fashion_mnist)."),
    val_size: int = typer.Option(10_000, "--val-size", min=0, help="The validation split, as cells hold it out."),
    data_dir: Path = DataDirOption,
) -> None:
    """Write the suite's fixed binarisation in Larochelle's .amat format, for another project's own code."""
    from benchmark.data.datasets import DATASETS
    from benchmark.data.export import export_binarized
    from benchmark.runner.preflight import check_data_dir, check_results_folder

    if DATASETS[dataset].channels != 1:
        raise BenchError(
            f"--dataset {dataset}: has {DATASETS[dataset].channels} channels; binarisation is for grey data"
        )
    check_results_folder(out, "--out")
    check_data_dir(data_dir)
    for path in export_binarized(dataset, val_size, out, data_dir):
        console.print(f"wrote {path}")


@app.command()
def run(
    grid: Path = typer.Option(None, "--grid", help="Grid YAML (default: ablations/smoke.yaml)."),
    set_: list[str] = typer.Option([], "--set", help="Run one cell without a grid: --set backbone=conv ..."),
    override: list[str] = typer.Option(
        [], "--override", help="Set a base field of every cell (epochs=3) or an eval setting (eval.recon_size=1000)."
    ),
    results: Path = typer.Option(Path("results"), "--results", help="Cell store folder."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda, cuda:1, ..."),
    force: bool = typer.Option(False, "--force", help="Retrain cells that are already done."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the cells and their status; train nothing."),
    only: list[str] = typer.Option([], "--only", help="Keep cells with KEY=VALUE (repeatable)."),
    max_cells: int = typer.Option(None, "--max-cells", min=1, help="Train at most N cells."),
    pack: bool = typer.Option(
        None, "--pack/--no-pack", help="Train cells differing only in seed/beta/lr together (default: on CUDA)."
    ),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the training step."),
    threads: int = typer.Option(
        None, "--threads", min=1, help="torch CPU threads per cell (default: torch's, or CPUs / workers)."
    ),
    workers: int = typer.Option(
        1, "--workers", min=1, help="local: train N cells at once, each in its own process (default 1)."
    ),
    executor: str = typer.Option(
        "local",
        "--executor",
        help="local, processes (as --workers N), ray (the ray extra) or slurm (the slurm extra: submitit).",
    ),
    ray_address: str = typer.Option(None, "--ray-address", help="Join this Ray cluster (default: start one)."),
    ray_cpus: int = typer.Option(None, "--ray-cpus", min=1, help="Ray: CPUs of the local Ray (default: all)."),
    cpus_per_cell: float = typer.Option(1.0, "--cpus-per-cell", min=0.01, help="Ray: CPUs per task."),
    gpus_per_cell: float = typer.Option(0.0, "--gpus-per-cell", min=0.0, help="Ray: GPUs per task (fractions share)."),
    checkpoint_every: int = typer.Option(
        1,
        "--checkpoint-every",
        min=0,
        help="Save a training cell's state every N epochs (and on SIGTERM); a killed cell resumes from it. "
        "0: only after training and on SIGTERM. Packed cells save none.",
    ),
    keep_checkpoints: bool = typer.Option(
        False, "--keep-checkpoints", help="Keep a done cell's last training state (resume.pt)."
    ),
    track: list[str] = typer.Option(
        [], "--track", help="Log each cell to an experiment tracker: tensorboard, mlflow (repeatable)."
    ),
    track_dir: Path = typer.Option(Path("tracking"), "--track-dir", help="Folder of the trackers' local logs."),
    track_uri: str = typer.Option(
        None, "--track-uri", help="MLflow tracking URI (default: a file store in --track-dir)."
    ),
    slurm_partition: str = typer.Option(None, "--slurm-partition", help="Slurm: partition of the jobs."),
    slurm_time: int = typer.Option(None, "--slurm-time", min=1, help="Slurm: minutes per job (default 60)."),
    slurm_mem: float = typer.Option(None, "--slurm-mem", min=0.1, help="Slurm: GB of memory per job."),
    slurm_cpus: int = typer.Option(None, "--slurm-cpus", min=1, help="Slurm: CPUs per job (default 1)."),
    slurm_gpus: int = typer.Option(None, "--slurm-gpus", min=0, help="Slurm: GPUs per job (default 0)."),
    slurm_cells_per_job: int = typer.Option(None, "--slurm-cells-per-job", min=1, help="Slurm: cells per job."),
    slurm_folder: Path = typer.Option(None, "--slurm-folder", help="Slurm: submitit's job files (default slurm/)."),
    slurm_local: bool = typer.Option(
        None, "--slurm-local", help="Slurm: run the jobs with submitit's local executor (subprocesses here)."
    ),
    data_dir: Path = DataDirOption,
) -> None:
    """Train and evaluate every cell of a grid that is not done yet."""
    from benchmark.cli_run import resolve_grid, run_command
    from benchmark.runner.grid_run import RunOptions
    from benchmark.runner.tracking import TrackingOptions

    spec = resolve_grid(grid, set_, override)
    from benchmark.runner.grid_run import EXECUTORS

    EXECUTORS[executor]  # an unknown name is a user error before anything runs
    if workers > 1 and executor not in ("local", "processes"):
        raise BenchError(f"--workers {workers} is for the local executor; with {executor}, set --cpus-per-cell")
    slurm_given = {
        "partition": slurm_partition,
        "time_min": slurm_time,
        "mem_gb": slurm_mem,
        "cpus_per_job": slurm_cpus,
        "gpus_per_job": slurm_gpus,
        "cells_per_job": slurm_cells_per_job,
        "folder": None if slurm_folder is None else str(slurm_folder),
        "local": slurm_local,
    }
    slurm_given = {k: v for k, v in slurm_given.items() if v is not None}
    if slurm_given and executor != "slurm":
        raise BenchError(f"--slurm-* options are for --executor slurm (the executor here: {executor})")
    options = RunOptions(
        device=device,
        force=force,
        data_dir=data_dir,
        max_cells=max_cells,
        pack=pack,
        compile=compile_,
        threads=threads,
        workers=workers,
        executor=executor,
        ray_address=ray_address,
        ray_cpus=ray_cpus,
        cpus_per_cell=cpus_per_cell,
        gpus_per_cell=gpus_per_cell,
        checkpoint_every=checkpoint_every,
        keep_checkpoints=keep_checkpoints,
        tracking=TrackingOptions(tuple(dict.fromkeys(track)), str(track_dir), track_uri),
        slurm=_slurm_options(slurm_given) if executor == "slurm" else None,
    )
    raise typer.Exit(run_command(console, spec, results, options, only, dry_run))


def _slurm_options(given: dict):
    from benchmark.runner.slurm_executor import SlurmOptions, check_slurm

    options = SlurmOptions(**given)
    check_slurm(options)  # submitit installed, its folder writable: before any cell
    return options


@app.command()
def evaluate(
    grid: Path = typer.Option(None, "--grid", help="Grid YAML (default: ablations/smoke.yaml)."),
    override: list[str] = typer.Option([], "--override", help="As given to bench run."),
    only: list[str] = typer.Option([], "--only", help="Keep cells with KEY=VALUE (repeatable)."),
    metrics: str = typer.Option(None, "--metrics", help="Comma-separated metrics (or groups) to measure; default all."),
    stale: bool = typer.Option(False, "--stale", help="Only cells measured under an older protocol."),
    results: Path = typer.Option(Path("results"), "--results", help="Cell store folder."),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu, cuda, cuda:1, ..."),
    data_dir: Path = DataDirOption,
) -> None:
    """Measure done cells again from their checkpoints under the current protocol; trains nothing."""
    from benchmark.cli_run import evaluate_command, resolve_grid

    spec = resolve_grid(grid, [], override)
    names = None if metrics is None else [m.strip() for m in metrics.split(",") if m.strip()]
    if names == []:
        raise BenchError(f"--metrics {metrics!r}: names no metric; give metric or group names, or leave it out for all")
    raise typer.Exit(evaluate_command(console, spec, results, only, names, stale, device, data_dir))


@app.command()
def status(
    grid: Path = typer.Option(None, "--grid", help="Grid YAML (default: ablations/smoke.yaml)."),
    override: list[str] = typer.Option([], "--override", help="As given to bench run."),
    results: Path = typer.Option(Path("results"), "--results", help="Cell store folder."),
) -> None:
    """Done, failed and pending cells of a grid, with their headline metrics."""
    from benchmark.cli_run import cell_table, resolve_grid
    from benchmark.store import CellStatus, CellStore

    spec = resolve_grid(grid, [], override)
    store = CellStore(results)
    from benchmark.runner.evaluate_stage import is_stale

    if results.exists() and not results.is_dir():
        raise BenchError(f"--results {results}: is a file, not a cell store")
    states = [store.status(c.id) for c in spec.cells]
    counts = ", ".join(f"{sum(s == k for s in states)} {k.value}" for k in CellStatus)
    if not results.exists():
        counts += f" (no store at {results} yet)"
    stale = sum(is_stale(store, c) for c in spec.cells)
    if stale:
        counts += f" ({stale} done under an older protocol: bench evaluate --stale)"
    console.print(cell_table(spec, list(spec.cells), store, f"{spec.name}: {counts}"))
    for cell, state in zip(spec.cells, states):
        if state == CellStatus.DAMAGED:
            console.print(f"[red]damaged {cell.id}: {store.damage(cell.id)}", soft_wrap=True)
    if CellStatus.DAMAGED in states:
        console.print("bench run redoes damaged cells (their files are moved to damaged/ first, not deleted)")


@app.command()
def report(
    grid: list[Path] = typer.Option([], "--grid", help="Grid YAML (repeatable)."),
    all_: bool = typer.Option(False, "--all", help="Every grid recorded in the store."),
    results: Path = typer.Option(Path("results"), "--results", help="Cell store folder."),
    out: Path = typer.Option(Path("reports"), "--out", help="Where reports/<grid>.md and figures go."),
    scale_check: list[Path] = typer.Option(
        [],
        "--scale-check",
        help="Another store with some of the same cells at another scale (e.g. fewer epochs): the report compares "
        "the rankings (repeatable).",
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace a published report even if it would drop cells the published one has."
    ),
    from_published: bool = typer.Option(
        False,
        "--from-published",
        help="Render from the data published beside each report (reports/<grid>/cells.jsonl), not from a store.",
    ),
    data_dir: Path = DataDirOption,
) -> None:
    """Render markdown reports (tables, comparisons, figures) from the store; trains nothing.

    A report is written whole or not at all, and is not replaced by one made from fewer cells unless --force."""
    from benchmark.report.frame import done_cells, from_grid_file, from_store_record
    from benchmark.report.publish import check_publishable
    from benchmark.report.render import render_from_published, render_report
    from benchmark.runner.preflight import check_data_dir, check_results_folder, check_store
    from benchmark.store import CellStore

    if from_published:
        if all_ or scale_check or results != Path("results"):
            raise BenchError(
                "--from-published renders each --grid from its published data alone; drop --all, "
                "--results and --scale-check"
            )
        for path in grid or [Path("ablations/smoke.yaml")]:
            console.print(f"wrote {render_from_published(path, out)}")
        _write_indexes(out)
        return
    for path in scale_check:
        if not (path / "grids").is_dir():
            raise BenchError(f"--scale-check {path}: not a cell store (no grids/ folder in it)")
    store = check_store(results)
    check_results_folder(out, "--out")
    check_data_dir(data_dir)
    if all_ and grid:
        raise BenchError("give either --all or --grid, not both")
    if all_:
        grids = [from_store_record(store, n) for n in store.grid_names()]
    else:
        grids = [from_grid_file(store, g) for g in grid or [Path("ablations/smoke.yaml")]]
    if not grids:
        raise BenchError(f"--results {results}: no grid has been run there yet")
    for spec in grids:  # every report checked before any is written
        check_publishable(spec.name, done_cells(store, spec), results, out, force)
    others = tuple(CellStore(path) for path in scale_check)
    for spec in grids:
        console.print(f"wrote {render_report(store, spec, out, data_dir, others)}")
    _write_indexes(out)


def _write_indexes(out: Path) -> None:
    """The findings index and the README's list of published results, from the reports."""
    from benchmark.report.index import write_indexes

    for path in write_indexes(out):
        console.print(f"wrote {path}")


@app.command()
def sample(
    cell: str = typer.Option(..., "--cell", help="Cell id (see bench status)."),
    text: str = typer.Option(None, "--text", help="A short text naming a class, or a caption for text cells."),
    label: int = typer.Option(None, "--label", help="A class index."),
    image: str = typer.Option(None, "--image", help="Image-task cells: the test image to complete, test:INDEX."),
    n: int = typer.Option(16, "-n", min=1, max=MAX_SAMPLES, help=f"Number of samples (at most {MAX_SAMPLES})."),
    seed: int = typer.Option(0, "--seed", min=0, help="Noise seed."),
    out: Path = typer.Option(Path("samples.png"), "--out", help="PNG to write."),
    scale: int = typer.Option(
        None, "--scale", min=1, max=16, help="Enlarge by this factor (default: to at least 112 px per image)."
    ),
    results: Path = typer.Option(Path("results"), "--results", help="Cell store folder."),
    data_dir: Path = DataDirOption,
) -> None:
    """Draw a grid of samples from a trained cell for a text or a label, or completions of a test image."""
    from benchmark.runner.preflight import check_data_dir, check_output_file, check_store
    from benchmark.sampling import sample_grid

    check_output_file(out, "--out", ".png")
    check_data_dir(data_dir)
    console.print(sample_grid(check_store(results), cell, text, label, n, seed, out, data_dir, scale, image))


@app.command()
def reproduce(
    grid: Path = typer.Option(Path("ablations/smoke.yaml"), "--grid", help="Grid YAML."),
    reference: Path = typer.Option(None, "--reference", help="Reference JSON (default: beside the grid)."),
    results: Path = typer.Option(Path("results"), "--results", help="Cell store folder."),
    write: bool = typer.Option(False, "--write", help="Write the reference from the store instead."),
) -> None:
    """Check a grid's stored metrics against committed reference values; exit 1 on drift."""
    from benchmark.grid import load_grid
    from benchmark.runner.preflight import check_output_file, check_store
    from benchmark.runner.reference import compare_with_reference, write_reference

    spec = load_grid(grid)
    path = reference or grid.with_suffix(".reference.json")
    store = check_store(results)
    if write:
        check_output_file(path, "--reference", ".json")
        write_reference(spec, store, path)
        console.print(f"wrote {path}")
        return
    problems = compare_with_reference(spec, store, path)
    for line in problems:
        console.print(f"[red]drift: {line}", soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    console.print(f"{spec.name}: all {len(spec.cells)} cells match {path} within its tolerances")


@app.command()
def compare(
    store_a: Path = typer.Argument(..., help="The store compared against (A)."),
    store_b: Path = typer.Argument(..., help="The store compared (B)."),
    grid: Path = typer.Option(..., "--grid", help="Grid YAML: the cells compared."),
    metric: list[str] = typer.Option(
        None, "--metric", help="A metric to compare (repeatable; default: every metric with a tolerance)."
    ),
    csv: Path = typer.Option(None, "--csv", help="Also write every row to this CSV file."),
) -> None:
    """The same cells in two stores (another machine, commit or scale) side by side: B - A per metric and
    whether it exceeds the `bench reproduce` tolerance; exit 1 if any does or B lacks a cell A has."""
    import pandas as pd

    from benchmark.fileio import atomic_write
    from benchmark.report.frame import from_grid_file
    from benchmark.runner.preflight import check_output_file, check_store
    from benchmark.runner.reference import axes_label, check_metric_names, compare_stores

    metrics = check_metric_names(metric or [])
    a, b = check_store(store_a, "STORE_A"), check_store(store_b, "STORE_B")
    if csv is not None:
        check_output_file(csv, "--csv", ".csv")
    spec = from_grid_file(a, grid)  # the cells as A ran them (its recorded overrides), else as the file says
    cells = [(axes_label(c["axes"]), c["id"]) for c in spec.cells]
    result = compare_stores(cells, a, b, metrics)
    if not result.compared and not result.missing:
        raise BenchError(f"--grid {grid}: none of its {len(cells)} cells is done in STORE_A {a.root}; nothing compared")
    for name in metric or []:
        if not any(r.metric == name for r in result.rows):
            raise BenchError(f"--metric {name}: no cell holds it as one number (a list or per-class value?)")
    for line in result.notes:
        console.print(f"[yellow]{line}", soft_wrap=True)
    for line in result.missing:
        console.print(f"[red]missing: {line}", soft_wrap=True)
    beyond = [r for r in result.rows if r.beyond]
    shown = result.rows if len(result.rows) <= 60 else beyond
    if shown:
        table = Table("cell", "metric", "A", "B", "B - A", "allowed", "beyond", title=f"{spec.name}: B against A")
        for r in shown:
            values = (_number(v) for v in (r.a, r.b, r.difference, r.allowed))
            table.add_row(r.cell, r.metric, *values, "yes" * r.beyond)
        console.print(table)
    if csv is not None:
        frame = pd.DataFrame([{**vars(r), "difference": r.difference, "beyond": r.beyond} for r in result.rows])
        atomic_write(csv, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.10g"))
    console.print(
        f"{len(result.compared)} cells and {len(result.rows)} metric values compared, "
        f"{len(beyond)} beyond tolerance, {len(result.missing)} done in A and missing in B"
        + (" (only those beyond shown; every row: --csv)" if shown is beyond and result.rows else "")
        + (f"; wrote {csv}" if csv is not None else "")
    )
    if beyond or result.missing:
        raise typer.Exit(1)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


store_app = typer.Typer(no_args_is_help=True, help="The cell store itself.")
app.add_typer(store_app, name="store")


@store_app.command("check")
def store_check(
    results: Path = typer.Option(Path("results"), "--results", help="Cell store folder."),
) -> None:
    """Verify every stored file of every cell (parse, keys, checksums); exit 1 if anything is damaged."""
    from benchmark.runner.preflight import check_store
    from benchmark.store import CellStatus

    store = check_store(results)
    states = {cell_id: store.status(cell_id) for cell_id in store.cell_ids()}
    damaged = [c for c, s in states.items() if s == CellStatus.DAMAGED]
    done = [c for c, s in states.items() if s == CellStatus.DONE]
    unverified = [c for c in done if not store.verified(c)]
    bad_grids = []
    for name in store.grid_names():
        try:
            store.grid_record(name)
        except BenchError as err:
            bad_grids.append(str(err))
    counts = ", ".join(f"{sum(s == k for s in states.values())} {k.value}" for k in CellStatus)
    grids = len(store.grid_names())
    console.print(f"{results}: {len(states)} cells: {counts}; {grids} grid record{'s' * (grids != 1)}", soft_wrap=True)
    if unverified:
        console.print(
            f"{len(unverified)} done cells were written before checksums: parsed and checked for their keys only",
            soft_wrap=True,
        )
    for cell_id in damaged:
        console.print(f"[red]damaged {cell_id}: {store.damage(cell_id)}", soft_wrap=True)
    for line in bad_grids:
        console.print(f"[red]damaged grid record {line}", soft_wrap=True)
    if damaged or bad_grids:
        console.print("bench run redoes damaged cells (their files are moved to damaged/ first, not deleted)")
        raise typer.Exit(1)


instrument_app = typer.Typer(no_args_is_help=True, help="The measuring instruments shipped with the package.")
app.add_typer(instrument_app, name="instrument")


@instrument_app.command("train")
def instrument_train(
    dataset: str = typer.Option(..., "--dataset", help="Data set whose domain classifier to build."),
    data_dir: Path = DataDirOption,
) -> None:
    """Train a new domain classifier (fixed recipe) and make it the data set's instrument, under a new key.

    Metrics measured with it are not comparable with those of the previous instrument; reports say so."""
    from benchmark.data.datasets import DATASETS
    from benchmark.metrics.classifier import train_instrument
    from benchmark.runner.preflight import check_data_dir

    DATASETS[dataset]  # an unknown name is one line naming the known ones
    check_data_dir(data_dir)
    entry = train_instrument(dataset, data_dir)
    console.print(f"{dataset}: {entry['file']} sha256 {entry['sha256']} test accuracy {entry['test_accuracy']:.4f}")


perf_app = typer.Typer(no_args_is_help=True, help="Speed measurements (never run inside tests).")
app.add_typer(perf_app, name="perf")


@perf_app.command("eval")
def perf_eval(
    n_samples: int = typer.Option(10_000, "--n-samples", min=1),
    nll_k: int = typer.Option(100, "--nll-k", min=1, help="Importance samples per image (the literature: 5,000)."),
    nll_size: int = typer.Option(500, "--nll-size", min=0, help="Test images for the likelihoods; 0 = all."),
    device: str = typer.Option("cpu", "--device"),
    data_dir: Path = DataDirOption,
) -> None:
    """Time the evaluation protocol on one 28x28 cell (Inception FID aside)."""
    import json

    from benchmark.perf.eval_timing import time_evaluation
    from benchmark.runner.preflight import check_data_dir, check_device

    check_device(device)
    check_data_dir(data_dir)
    console.print_json(json.dumps(time_evaluation(n_samples, device, data_dir, nll_k, nll_size or None)))


@perf_app.command("train")
def perf_train(
    images: int = typer.Option(12_800, "--images", min=128, help="Training images per measurement."),
    pack: int = typer.Option(4, "--pack", min=2, help="Cells in the packed measurement."),
    device: str = typer.Option("auto", "--device"),
    out: Path = typer.Option(Path("reports/perf.md"), "--out"),
    data_dir: Path = DataDirOption,
) -> None:
    """Images per second of a tutorial loop, the trainer and packed training; writes reports/perf.md."""
    import os

    from benchmark.fileio import write_text
    from benchmark.perf.train_speed import render_markdown, run_perf
    from benchmark.runner.preflight import check_data_dir, check_device, check_output_file

    check_output_file(out, "--out", ".md")
    check_device(device)
    check_data_dir(data_dir)
    if data_dir:
        os.environ["BENCH_DATA_DIR"] = str(data_dir)
    text = render_markdown(run_perf(images, pack, device))
    write_text(out, text)
    console.print(text)
    console.print(f"wrote {out}")


@perf_app.command("cell")
def perf_cell(
    grid: Path = typer.Option(..., "--grid", help="Grid YAML whose cells to time."),
    override: list[str] = typer.Option([], "--override", help="As given to bench run."),
    only: list[str] = typer.Option([], "--only", help="Keep cells with KEY=VALUE (repeatable); the first are timed."),
    epochs: int = typer.Option(3, "--epochs", min=2, help="Epochs per cell (the first is not counted)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Cells at a time, as bench run --workers."),
    out: Path = typer.Option(None, "--out", help="Also write the tables to this .md file."),
    data_dir: Path = DataDirOption,
) -> None:
    """A real cell of a grid trained through bench run's path beside the trainer as bench perf times it (CPU)."""
    from benchmark.cli_run import resolve_grid
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


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors, ours and the option parser's, become one line on stderr and exit 2."""
    try:
        code = app(args=argv, standalone_mode=False)
    except BenchError as err:
        _fail(str(err), err.exit_code)
    except parser_errors.NoArgsIsHelpError as err:
        print(err.ctx.get_help())
        sys.exit(0)
    except parser_errors.UsageError as err:
        command = err.ctx.command_path if err.ctx else "bench"
        _fail(f"{command}: {err.format_message()} (see {command} --help)", 2)
    except parser_errors.ClickException as err:
        _fail(err.format_message(), err.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        _fail(
            "interrupted: cells already stored are kept; the next run resumes those in flight from their last save", 130
        )
    except Preempted:
        _fail("terminated (SIGTERM): cells in training saved their state; the next run resumes them", 143)
    sys.exit(code or 0)


def _fail(message: str, code: int) -> None:
    print("error: " + " ".join(message.split()), file=sys.stderr)
    sys.exit(code)

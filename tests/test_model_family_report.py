"""A grid whose model varies: each model's sampling cost (bench perf sample) and its figures in the report,
and both again from the published data alone."""

import re
import time

import pytest
import torch

from benchmark.grid import load_grid
from benchmark.store import CellStatus, CellStore
from benchmark.store.cells import SAMPLE_TIMING
from benchmark.training.trainer import load_stored_cell
from tests.test_runner import VQ_TINY, write_grid

MODELS = ["ae", "vae", "cvae", "vqvae"]


def bench(*args) -> int:
    from benchmark.commands import main

    with pytest.raises(SystemExit) as exited:
        main([str(a) for a in args])
    return exited.value.code


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    """A run grid of three models (1 seed, synthetic, 2 epochs), timed by bench perf sample."""
    folder = tmp_path_factory.mktemp("family")
    base = {**VQ_TINY, "conditioning": "concat", "recon_loss": "cbernoulli"}  # a density: the label metrics run
    base.pop("codebook_size")  # a VQ-VAE option, refused for the other models: the default codebook
    grid_file = write_grid(folder / "family.yaml", "family", {"model": MODELS}, base)
    results = folder / "results"
    assert bench("run", "--grid", grid_file, "--results", results, "--device", "cpu") == 0
    before = _cell_files(results)
    timing = ("--images", 50, "--batch", 20)  # rounded up to 3 whole batches
    assert bench("perf", "sample", "--grid", grid_file, "--results", results, *timing) == 0
    assert _cell_files(results) == before  # a measurement beside the cells' outputs, none of them rewritten
    return grid_file, results


def _cell_files(results) -> dict:
    return {p.relative_to(results): p.read_bytes() for p in results.glob("*/*") if p.name != SAMPLE_TIMING}


def test_sampling_is_timed_per_cell_and_recorded_outside_the_cell_s_checked_files(family):
    grid_file, results = family
    store = CellStore(results)
    for cell in load_grid(grid_file).cells:
        timing = store.read(cell.id, SAMPLE_TIMING)
        assert timing["ms_per_image"] == sorted(timing["runs_ms_per_image"])[1]  # the median of 3
        assert timing["images"] == 60 and timing["threads"] == 1 and timing["sampler"]
        assert 0.1 < timing["ms_per_image"] / _ms_per_image(store, cell.id) < 10  # milliseconds, per image
        # a new measurement replaces the record; the cell's checksummed files are untouched by it
        store.record_sample_timing(cell.id, {**timing, "ms_per_image": 2 * timing["ms_per_image"]})
        assert store.status(cell.id) == CellStatus.DONE and store.damage(cell.id) is None
        store.record_sample_timing(cell.id, timing)


def _ms_per_image(store: CellStore, cell_id: str) -> float:
    """The cell's sampler timed here, independently of bench perf sample: 5 batches of 20 on one thread."""
    trained = load_stored_cell(store, cell_id)
    conditions, generator = torch.arange(20) % 10, torch.Generator().manual_seed(0)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        trained.model.sample(conditions, generator)
        start = time.perf_counter()
        for _ in range(5):
            trained.model.sample(conditions, generator)
        return 1000 * (time.perf_counter() - start) / 100
    finally:
        torch.set_num_threads(previous)


def test_the_report_shows_per_image_costs_and_each_model_s_figures_again_from_published(family, tmp_path, cli):
    grid_file, results = family
    out = tmp_path / "reports"
    report = cli("report", "--grid", grid_file, "--results", results, "--out", out)
    assert report.returncode == 0, report.stderr
    text = (out / "family.md").read_text()
    results = text[text.index("## Results") :].splitlines()
    header = next(line for line in results if line.startswith("| model |"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    rows = {r.split("|")[1].strip(): r for r in results[results.index(header) + 2 :][:4] if re.match(r"\| \w+ \|", r)}
    assert set(rows) == set(MODELS)
    ignoring = [line for line in text.splitlines() if "its model ignores the condition" in line]
    assert len(ignoring) == 1 and "model=vae" in ignoring[0]  # the VQ-VAE's prior and the AE's Gaussians read it
    for name in ("train (ms/image)", "sample (ms/image)", "cell (s)"):
        at = columns.index(name)
        assert all(float(rows[m].strip("|").split("|")[at]) > 0 for m in MODELS), name

    def cell(model: str, column: str) -> str:
        return rows[model].strip("|").split("|")[columns.index(column)].strip()

    assert cell("ae", "fid_domain_unit_codes") != "-" and cell("cvae", "fid_domain_unit_codes") == "-"
    assert cell("vae", "generative_accuracy") == "-" != cell("cvae", "generative_accuracy")  # 1/K by definition
    figures = {f"interpolation_{m}.png" for m in MODELS} | {"unit_code_samples_ae.png"}  # the AE alone: N(0, I)
    for name in figures:
        assert f"(family/{name})" in text and (out / "family" / name).read_bytes().startswith(b"\x89PNG")
    assert "unit_code_samples_cvae.png" not in text and "the two images' codes" in text

    again = cli("report", "--grid", grid_file, "--from-published", "--out", out)
    assert again.returncode == 0, again.stderr
    assert (out / "family.md").read_text() == text  # the timings travel in cells.jsonl, the figures are kept

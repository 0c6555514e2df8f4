"""Every bad input is stopped at the door: exit 2, one line on stderr naming what was wrong and where,
no traceback, nothing trained, and the store exactly as it was. None of these needs the real data."""

import gzip
import json
import sys
from pathlib import Path

import pytest
import torch

from benchmark.commands import main

GOOD_BASE = "dataset: synthetic\nbackbone: mlp\nhidden: [16]\ntrain_size: 100\nepochs: 1\n"


VQ_BASE = "dataset: synthetic\nmodel: vqvae\nbackbone: conv\nconditioning: none\ntrain_size: 100\nepochs: 1\n"


def grid_text(base: str = GOOD_BASE, rest: str = "seeds: [0]\n") -> str:
    indented = "".join(f"  {line}\n" for line in base.splitlines())
    return f"name: bad\nbase:\n{indented}{rest}"


# (id, grid file content (str or bytes) or None for the good grid, extra CLI args, text the error must contain)
GRID_FILES = [
    ("binary file", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", [], "not a UTF-8 text file"),
    ("latin-1 text", "name: caf\xe9\n".encode("latin-1"), [], "not a UTF-8 text file"),
    ("NUL bytes", "name: a\x00b\n", [], "NUL bytes"),
    ("unclosed list", "name: bad\naxes: {latent_dim: [1, 2}\n", [], "not valid YAML"),
    ("key given twice", grid_text(GOOD_BASE + "epochs: 3\n"), [], "key 'epochs' given twice (lines 7 and 8)"),
    ("a list, not a mapping", "- 1\n- 2\n", [], "a grid must be a mapping"),
    ("unknown top-level key", grid_text(rest="seeds: [0]\nsedes: [1]\n"), [], "sedes = [1]: unknown key"),
    ("unknown metric shown", grid_text(rest="seeds: [0]\nshows: [kll]\n"), [], "shows[0] = 'kll': unknown metric"),
    ("unknown cell field", grid_text(GOOD_BASE + "latnet_dim: 4\n"), [], "base.latnet_dim = 4: unknown cell field"),
    ("boolean for an integer", grid_text(GOOD_BASE + "latent_dim: true\n"), [], "base.latent_dim = True"),
    ("string for an integer", grid_text(GOOD_BASE + "latent_dim: '8'\n"), [], "base.latent_dim = '8'"),
    ("infinite beta", grid_text(GOOD_BASE + "beta: .inf\n"), [], "base.beta = inf: Input should be a finite number"),
    ("NaN learning rate", grid_text(GOOD_BASE + "lr: .nan\n"), [], "base.lr = nan: Input should be a finite number"),
    ("negative beta", grid_text(GOOD_BASE + "beta: -1\n"), [], "base.beta = -1"),
    ("zero latent size", grid_text(GOOD_BASE + "latent_dim: 0\n"), [], "base.latent_dim = 0"),
    (
        "latent size past the limit",
        grid_text(GOOD_BASE + "latent_dim: 1000000000\n"),
        [],
        "less than or equal to 16384",
    ),
    ("empty hidden list", grid_text(GOOD_BASE.replace("[16]", "[]")), [], "base.hidden = []"),
    ("non-positive hidden width", grid_text(GOOD_BASE.replace("[16]", "[16, -4]")), [], "base.hidden[1] = -4"),
    ("boolean hidden width", grid_text(GOOD_BASE.replace("[16]", "[true]")), [], "base.hidden[0] = True"),
    ("train_size past the split", grid_text(GOOD_BASE.replace("100", "7000")), [], "larger than the synthetic train"),
    ("zero train_size", grid_text(GOOD_BASE.replace("100", "0")), [], "base.train_size = 0"),
    ("unknown data set", grid_text(GOOD_BASE.replace("synthetic", "cifar")), [], "unknown data set 'cifar'; valid:"),
    ("unknown backbone", grid_text(GOOD_BASE.replace("mlp", "resnet")), [], "unknown backbone 'resnet'; valid:"),
    ("unknown conditioning", grid_text(GOOD_BASE + "conditioning: sum\n"), [], "unknown conditioning 'sum'; valid:"),
    ("unknown prior", grid_text(GOOD_BASE + "prior: gaussian\n"), [], "unknown prior 'gaussian'; valid: standard"),
    ("codebook of one vector", grid_text(VQ_BASE + "codebook_size: 1\n"), [], "base.codebook_size = 1"),
    ("negative commitment", grid_text(VQ_BASE + "commitment: -0.5\n"), [], "base.commitment = -0.5"),
    ("zero code dimension", grid_text(VQ_BASE + "code_dim: 0\n"), [], "base.code_dim = 0"),
    (
        "unknown codebook update",
        grid_text(VQ_BASE + "codebook_update: kmeans\n"),
        [],
        "base.codebook_update = 'kmeans'",
    ),
    ("vqvae on the MLP", grid_text(VQ_BASE.replace("conv", "mlp")), [], "backbone 'mlp' has none"),
    (
        "a code prior option on a model without one",
        grid_text(GOOD_BASE + "prior_epochs: 5\n"),
        [],
        "prior_epochs: options of model vqvae's codebook and code prior; model 'cvae' has none",
    ),
    ("prior width past its heads", grid_text(VQ_BASE + "prior_width: 30\n"), [], "prior_width 30"),
    ("zero width_scale", grid_text(GOOD_BASE + "width_scale: 0\n"), [], "base.width_scale = 0"),
    ("string for match_params", grid_text(rest="match_params: 'yes'\n"), [], "match_params = 'yes'"),
    (
        "match_params on a fixed-width backbone",
        grid_text(GOOD_BASE.replace("mlp", "tutorial-mlp"), rest="match_params: true\n"),
        [],
        "match_params: backbone 'tutorial-mlp' has fixed widths",
    ),
    (
        "match_params beside a width_scale",
        grid_text(GOOD_BASE + "width_scale: 1.5\n", rest="match_params: true\n"),
        [],
        "base.width_scale = 1.5: match_params sets width_scale itself",
    ),
    (
        "claim about a value the axis lacks",
        grid_text(
            rest="axes: {conditioning: [none, concat]}\n"
            "claims: [{source: a paper, axis: conditioning, better: film, worse: none, metrics: [sse_image]}]\n"
        ),
        [],
        "claims[0].better = 'film': not a value of axis conditioning; valid: none, concat",
    ),
    (
        "question about a field that is not an axis",
        grid_text(rest="axes: {conditioning: [none, concat]}\nquestion: {text: Q, axis: beta, metrics: [sse_image]}\n"),
        [],
        "question.axis = 'beta': not an axis; axes: conditioning",
    ),
    ("unsupported image size", grid_text(GOOD_BASE + "image_size: 48\n"), [], "base.image_size = 48"),
    (
        "unknown schedule",
        grid_text(GOOD_BASE + "schedule: warmup\n"),
        [],
        "base.schedule = 'warmup': unknown schedule 'warmup'; valid: constant, multistep, cosine, plateau",
    ),
    (
        "milestones that do not increase",
        grid_text(GOOD_BASE + "schedule: multistep\nmilestones: [5, 3]\n"),
        [],
        "base.milestones = [5, 3]: milestones must increase strictly",
    ),
    ("zero milestone", grid_text(GOOD_BASE + "milestones: [0]\n"), [], "base.milestones[0] = 0"),
    ("zero gamma", grid_text(GOOD_BASE + "gamma: 0\n"), [], "base.gamma = 0: Input should be greater than 0"),
    ("gamma above one", grid_text(GOOD_BASE + "gamma: 1.5\n"), [], "base.gamma = 1.5: Input should be less than"),
    ("zero patience", grid_text(GOOD_BASE + "patience: 0\nval_size: 10\n"), [], "base.patience = 0"),
    ("negative validation size", grid_text(GOOD_BASE + "val_size: -1\n"), [], "base.val_size = -1"),
    (
        "validation split leaving too few training images",
        grid_text(GOOD_BASE + "val_size: 5990\n"),
        [],
        "val_size 5990 leaves 10 of the 6000 synthetic training images, fewer than train_size 100",
    ),
    (
        "best epoch without a validation split",
        grid_text(GOOD_BASE + "select: best_val\n"),
        [],
        "select 'best_val' needs a validation split: set val_size",
    ),
    (
        "early stopping without a validation split",
        grid_text(GOOD_BASE + "patience: 3\n"),
        [],
        "patience 3 needs a validation split",
    ),
    (
        "plateau schedule without a validation split",
        grid_text(GOOD_BASE + "schedule: plateau\n"),
        [],
        "schedule 'plateau' needs a validation split",
    ),
    ("unknown selection", grid_text(GOOD_BASE + "select: best\n"), [], "base.select = 'best'"),
    ("text condition without captions", grid_text(GOOD_BASE + "condition: text\n"), [], "supports condition"),
    (
        "preset at a size it lacks",
        grid_text(GOOD_BASE.replace("mlp", "article-conv") + "image_size: 64\n"),
        [],
        "does not support image_size 64",
    ),
    ("empty axis", grid_text(rest="axes: {latent_dim: []}\n"), [], "axes.latent_dim = []: empty axis"),
    ("duplicate axis values", grid_text(rest="axes: {latent_dim: [4, 4]}\n"), [], "duplicate values"),
    ("duplicate seeds", grid_text(rest="seeds: [1, 1]\n"), [], "seeds = [1, 1]: duplicate seeds"),
    ("no seeds", grid_text(rest="seeds: []\n"), [], "seeds = []"),
    ("negative seed", grid_text(rest="seeds: [-1]\n"), [], "seeds[0] = -1"),
    ("boolean seed", grid_text(rest="seeds: [true]\n"), [], "seeds[0] = True"),
    (
        "zip of unequal axes",
        grid_text(rest="axes: {latent_dim: [2, 4], beta: [1.0]}\nzip: [[latent_dim, beta]]\n"),
        [],
        "equal length",
    ),
    (
        "exclude naming no field",
        grid_text(rest="exclude: [{latent: 2}]\n"),
        [],
        "exclude[0].latent = 2: unknown cell field",
    ),
    ("zero samples", grid_text(rest="eval: {n_samples: 0}\n"), [], "eval.n_samples = 0"),
    ("unknown eval key", grid_text(rest="eval: {fid: true}\n"), [], "eval.fid = True: unknown key"),
    (
        "claim of a level over itself",
        grid_text(
            rest="axes: {conditioning: [none, concat]}\n"
            "claims: [{source: a paper, axis: conditioning, better: none, worse: none, metrics: [sse_image]}]\n"
        ),
        [],
        "claims[0].worse = 'none': the same level as better",
    ),
    (
        "unknown key inside a claim",
        grid_text(
            rest="axes: {conditioning: [none, concat]}\n"
            "claims: [{source: a, axis: conditioning, better: concat, worse: none, metrics: [sse_image], by: 2}]\n"
        ),
        [],
        "claims[0].by = 2: unknown key; valid: source, axis, better, worse, metrics",
    ),
    (
        "unknown key inside the question",
        grid_text(
            rest="axes: {conditioning: [none, concat]}\nquestion: {text: Q, axis: conditioning, metrics: [sse_image], why: x}\n"
        ),
        [],
        "question.why = 'x': unknown key; valid: text, axis, metrics",
    ),
    (
        "missing text-encoder checkpoint",
        grid_text(
            "dataset: coco\ncondition: text\nimage_size: 64\nepochs: 1\ntext_encoder: 'cvae-tiny-clip:/no/such/clip.pt'\n"
        ),
        [],
        "checkpoint file not found",
    ),
    (
        "a model too large to train here",
        grid_text(GOOD_BASE.replace("[16]", "[16384, 16384, 16384, 16384, 16384, 16384, 16384, 16384, 16384, 16384]")),
        [],
        "GiB to train",
    ),
]

OPTIONS = [
    ("unknown device", ["--device", "tpu"], "--device 'tpu': not a device"),
    ("CUDA index past the devices", ["--device", "cuda:7"], "--device cuda:7"),
    ("results is a file", ["--results", "{file}"], "is a file, not a folder"),
    ("results under a file", ["--results", "{file}/sub"], "is a file, not a folder"),
    ("zero max cells", ["--max-cells", "0"], "Invalid value for '--max-cells'"),
    ("zero workers", ["--workers", "0"], "Invalid value for '--workers'"),
    ("zero threads", ["--threads", "0"], "Invalid value for '--threads'"),
    ("unknown option", ["--colour", "red"], "No such option: --colour"),
    ("workers with ray", ["--workers", "2", "--executor", "ray"], "--workers 2 is for the local executor"),
    ("unknown executor", ["--executor", "dask"], "unknown executor 'dask'; known: local, processes, ray"),
    ("unknown tracker", ["--track", "wandb"], "unknown tracker 'wandb'; known: tensorboard, mlflow"),
    ("tracking folder under a file", ["--track", "tensorboard", "--track-dir", "{file}/tb"], "cannot write there"),
    ("negative checkpoint interval", ["--checkpoint-every", "-1"], "Invalid value for '--checkpoint-every'"),
    ("Slurm options without the slurm executor", ["--slurm-partition", "gpu"], "--slurm-* options are for"),
    ("zero cells per Slurm job", ["--executor", "slurm", "--slurm-cells-per-job", "0"], "'--slurm-cells-per-job'"),
    ("Slurm job files under a file", ["--executor", "slurm", "--slurm-folder", "{file}/jobs"], "cannot write there"),
    (
        "filter matching nothing",
        ["--only", "latent_dim=99"],
        "--only latent_dim=99: matches no cell; latent_dim takes 16",
    ),
    ("filter on an unknown field", ["--only", "colour=red"], "unknown field 'colour'"),
    ("filter without a value", ["--only", "latent_dim"], "expected KEY=VALUE"),
    ("override of an axis", ["--override", "latent_dim=4"], "latent_dim is an axis of"),
    ("override to zero epochs", ["--override", "epochs=0"], "base.epochs = 0"),
    ("override with a boolean", ["--override", "epochs=true"], "base.epochs = True"),
    ("override with broken YAML", ["--override", "lr=[1"], "--override 'lr=[1': value is not valid YAML"),
    ("override of an unknown section", ["--override", "train.epochs=2"], "expected a cell field"),
    ("override of an unknown eval setting", ["--override", "eval.windows=2"], "eval.windows = 2: unknown key"),
    ("override given twice", ["--override", "epochs=2", "--override", "epochs=3"], "epochs is given twice"),
    (
        "explicit data folder that does not exist",
        ["--data-dir", "/no/such/folder"],
        "--data-dir /no/such/folder: no such folder",
    ),
]

SET_CELLS = [
    ("set and grid together", ["--set", "latent_dim=4", "--grid", "{grid}"], "give either --grid or --set"),
    ("set of an unknown field", ["--set", "colour=red"], "base.colour = 'red': unknown cell field"),
    ("set without a value", ["--set", "latent_dim"], "expected KEY=VALUE"),
    ("set of an empty hidden list", ["--set", "hidden=[]"], "base.hidden = []"),
]

GOOD_GRID = "{grid}"  # a one-cell synthetic grid whose cell is not done in the store
OTHER_COMMANDS = [
    ("status of a missing grid", ["status", "--grid", "/no/such.yaml"], "grid file not found"),
    ("status of a store that is a file", ["status", "--grid", GOOD_GRID, "--results", "{file}"], "is a file"),
    ("evaluate with an empty metric list", ["evaluate", "--grid", GOOD_GRID, "--metrics", ""], "names no metric"),
    ("evaluate with only commas", ["evaluate", "--grid", GOOD_GRID, "--metrics", ",,"], "',,': names no metric"),
    ("evaluate an unknown metric", ["evaluate", "--grid", GOOD_GRID, "--metrics", "fid"], "fid: unknown metric"),
    (
        "evaluate a store that does not exist",
        ["evaluate", "--grid", GOOD_GRID, "--results", "{missing}"],
        "no such folder (no cell store there)",
    ),
    (
        "evaluate a store that is no store",
        ["evaluate", "--grid", GOOD_GRID, "--results", "{empty}"],
        "not a cell store (no grids/ folder and no cells in it)",
    ),
    (
        "evaluate a grid with no done cell",
        ["evaluate", "--grid", GOOD_GRID],
        "no cell of grid bad is done there; nothing to measure",
    ),
    ("evaluate on an unknown device", ["evaluate", "--grid", GOOD_GRID, "--device", "tpu"], "--device 'tpu'"),
    (
        "sample into a folder",
        ["sample", "--cell", "aaaaaaaaaaaa", "--label", "1", "--out", "{dir}"],
        "is a folder; give a file name",
    ),
    (
        "sample into a JPEG name",
        ["sample", "--cell", "aaaaaaaaaaaa", "--label", "1", "--out", "{dir}/x.jpg"],
        "give a name ending in .png",
    ),
    (
        "sample under a file",
        ["sample", "--cell", "aaaaaaaaaaaa", "--label", "1", "--out", "{file}/x.png"],
        "is a file, not a folder",
    ),
    (
        "a hundred million samples",
        ["sample", "--cell", "aaaaaaaaaaaa", "--label", "1", "-n", "100000000"],
        "Invalid value for '-n'",
    ),
    ("negative sample seed", ["sample", "--cell", "aaaaaaaaaaaa", "--label", "1", "--seed", "-3"], "'--seed'"),
    (
        "sample from a store that does not exist",
        ["sample", "--cell", "aaaaaaaaaaaa", "--label", "1", "--results", "{missing}"],
        "no such folder",
    ),
    (
        "sample from a damaged cell",
        ["sample", "--cell", "bbbbbbbbbbbb", "--label", "1"],
        "cell bbbbbbbbbbbb in",
    ),
    (
        "report from a store that does not exist",
        ["report", "--grid", GOOD_GRID, "--results", "{missing}"],
        "no such folder (no cell store there)",
    ),
    ("report of a grid with no done cell", ["report", "--grid", GOOD_GRID], "nothing to report"),
    ("report into a file", ["report", "--grid", GOOD_GRID, "--out", "{file}"], "--out"),
    ("report of all and one grid", ["report", "--all", "--grid", GOOD_GRID], "either --all or --grid"),
    (
        "report of all grids of a store without any",
        ["report", "--all", "--results", "{cells_only}"],
        "no grid has been run there yet",
    ),
    (
        "report that would drop published cells",
        ["report", "--grid", "{published_grid}"],
        "rendering would drop them",
    ),
    ("report from a damaged grid record", ["report", "--grid", "{damaged_grid}"], "records the grid again"),
    (
        "report with a missing data folder",
        ["report", "--grid", GOOD_GRID, "--data-dir", "/no/such/folder"],
        "--data-dir /no/such/folder: no such folder",
    ),
    ("reproduce without its reference", ["reproduce", "--grid", GOOD_GRID], "reference file not found"),
    (
        "reproduce against a reference that is not JSON",
        ["reproduce", "--grid", GOOD_GRID, "--reference", "{file}"],
        "not a reference file (not JSON",
    ),
    (
        "reproduce against a JSON list",
        ["reproduce", "--grid", GOOD_GRID, "--reference", "{list_json}"],
        "no 'cells' mapping",
    ),
    (
        "reproduce from a store that does not exist",
        ["reproduce", "--grid", GOOD_GRID, "--results", "{missing}"],
        "no such folder",
    ),
    (
        "reference written from cells not done",
        ["reproduce", "--grid", GOOD_GRID, "--write", "--reference", "{dir}/ref.json"],
        "pending, not done; run the grid first",
    ),
    ("instrument for an unknown data set", ["instrument", "train", "--dataset", "cifar"], "unknown data set 'cifar'"),
    (
        "instrument with a missing data folder",
        ["instrument", "train", "--dataset", "mnist", "--data-dir", "/no/such/folder"],
        "no such folder",
    ),
    ("perf report into a folder", ["perf", "train", "--out", "{dir}"], "is a folder"),
    ("perf on an unknown device", ["perf", "train", "--device", "tpu"], "--device 'tpu'"),
    ("perf eval on an unknown device", ["perf", "eval", "--device", "tpu"], "--device 'tpu'"),
    ("perf eval of no samples", ["perf", "eval", "--n-samples", "0"], "Invalid value for '--n-samples'"),
    ("perf cell of more cells than the grid has", ["perf", "cell", "--grid", "{grid}", "--workers", "2"], "has only 1"),
    ("perf cell of one epoch", ["perf", "cell", "--grid", "{grid}", "--epochs", "1"], "Invalid value for '--epochs'"),
    ("perf cell tables into a folder", ["perf", "cell", "--grid", "{grid}", "--out", "{dir}"], "is a folder"),
    ("perf cell of a missing grid", ["perf", "cell", "--grid", "{missing}"], "no-such-store"),
    ("perf layout of a cell without convolutions", ["perf", "layout", "--grid", "{grid}"], "backbone mlp, no conv"),
    ("perf layout tables into a folder", ["perf", "layout", "--grid", "{grid}", "--out", "{dir}"], "is a folder"),
    ("perf layout of no steps", ["perf", "layout", "--grid", "{grid}", "--steps", "0"], "Invalid value for '--steps'"),
    (
        "binarised export of a colour data set",
        ["data", "export-amat", "--dataset", "coco", "--out", "{dir}/amat"],
        "--dataset coco: has 3 channels",
    ),
    ("binarised export into a file", ["data", "export-amat", "--out", "{file}"], "--out"),
    (
        "binarised export of an unknown data set",
        ["data", "export-amat", "--dataset", "cifar", "--out", "{dir}"],
        "cifar",
    ),
    (
        "report from published data that is not there",
        ["report", "--grid", GOOD_GRID, "--from-published"],
        "was published without its data",
    ),
    (
        "report from published data and a store",
        ["report", "--grid", GOOD_GRID, "--from-published", "--results", "{missing}"],
        "--from-published renders each --grid from its published data alone",
    ),
    ("store check of a store that does not exist", ["store", "check", "--results", "{missing}"], "no such folder"),
    ("store restore of a missing grid", ["store", "restore", "--grid", "/no/such.yaml"], "grid file not found"),
    (
        "store restore of a report published without its grid record",
        ["store", "restore", "--grid", "{published_grid}"],
        "grid.json: not found; this report was published without its data",
    ),
    ("report of a folder", ["report", "--grid", "{dir}"], "not a file"),
    (
        "sample of an unknown cell",
        ["sample", "--cell", "000000000000", "--label", "1"],
        "no trained cell '000000000000'",
    ),
    ("report with a scale check that is no store", ["report", "--scale-check", "{dir}"], "not a cell store"),
    ("reproduce of a binary grid", ["reproduce", "--grid", "{binary}"], "not a UTF-8 text file"),
]


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    """A results folder holding a finished cell and a damaged one, and a published report beside it, which
    no bad input may touch. The working folder is tmp_path, so default paths (reports/) land there."""
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results"
    for cell_id, config in (("aaaaaaaaaaaa", '{"cell": {}}\n'), ("bbbbbbbbbbbb", "{not json\n")):
        (results / cell_id).mkdir(parents=True)
        (results / cell_id / "metrics.json").write_text('{"sse_image": 1.0, "protocol": {}}\n')
        (results / cell_id / "config.json").write_text(config)
    reports = tmp_path / "reports"
    (reports / "published").mkdir(parents=True)
    (reports / "published.md").write_text("# Report: published\n")
    (reports / "published" / "cells.jsonl").write_text('{"id": "cccccccccccc", "status": "done"}\n')
    (reports / "README.md").write_text("# Findings index\n")
    return results


def snapshot(folder: Path) -> dict:
    """Every file under the store's folder's parent: the store and reports/ (and the test's own inputs)."""
    root = folder.parent
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_bench(args, capsys) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as exited:
        main([str(a) for a in args])
    return exited.value.code, capsys.readouterr().err.splitlines()


def assert_refused(args, expected, store, capsys):
    before = snapshot(store)
    code, err = run_bench(args, capsys)
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert expected in err[0], err[0]
    assert "Traceback" not in err[0]
    assert snapshot(store) == before


@pytest.mark.parametrize(("content", "extra", "expected"), [c[1:] for c in GRID_FILES], ids=[c[0] for c in GRID_FILES])
def test_bad_grid_file(tmp_path, store, capsys, content, extra, expected):
    grid = tmp_path / "bad.yaml"
    grid.write_bytes(content if isinstance(content, bytes) else content.encode())
    assert_refused(["run", "--grid", grid, "--results", store, "--device", "cpu", *extra], expected, store, capsys)


@pytest.mark.parametrize(("args", "expected"), [c[1:] for c in OPTIONS], ids=[c[0] for c in OPTIONS])
def test_bad_run_option(tmp_path, store, capsys, args, expected):
    grid = tmp_path / "good.yaml"
    grid.write_text(grid_text(rest="seeds: [0]\naxes: {latent_dim: [16]}\n"))
    (tmp_path / "file").write_text("not a folder\n")
    args = [a.replace("{file}", str(tmp_path / "file")) for a in args]
    command = ["run", "--grid", grid, "--results", store, *args]
    if "--device" not in args:
        command += ["--device", "cpu"]
    assert_refused(command, expected, store, capsys)


def test_the_slurm_executor_without_submitit_is_one_line_before_any_cell(tmp_path, store, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # as if the slurm extra were not installed
    grid = tmp_path / "good.yaml"
    grid.write_text(grid_text(rest="seeds: [0]\naxes: {latent_dim: [16]}\n"))
    command = ["run", "--grid", grid, "--results", store, "--device", "cpu", "--executor", "slurm"]
    assert_refused(command, "the slurm executor needs the 'slurm' extra", store, capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_on_a_machine_without_it_is_refused_once_before_any_cell(tmp_path, store, capsys):
    grid = tmp_path / "good.yaml"
    grid.write_text(grid_text(rest="seeds: [0, 1, 2]\n"))
    assert_refused(
        ["run", "--grid", grid, "--results", store, "--device", "cuda"], "CUDA is not available", store, capsys
    )


@pytest.mark.parametrize(("args", "expected"), [c[1:] for c in SET_CELLS], ids=[c[0] for c in SET_CELLS])
def test_bad_single_cell(tmp_path, store, capsys, args, expected):
    (tmp_path / "g.yaml").write_text(grid_text())
    args = [a.replace("{grid}", str(tmp_path / "g.yaml")) for a in args]
    assert_refused(["run", *args, "--results", store, "--device", "cpu"], expected, store, capsys)


@pytest.mark.parametrize(("args", "expected"), [c[1:] for c in OTHER_COMMANDS], ids=[c[0] for c in OTHER_COMMANDS])
def test_bad_input_to_other_commands(tmp_path, store, capsys, args, expected):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "binary.yaml").write_bytes(b"\xff\xfe\x00\x01")
    (inputs / "file").write_text("not JSON, not a folder\n")
    (inputs / "list.json").write_text("[1, 2]\n")
    (inputs / "empty").mkdir()
    (inputs / "cells-only" / "aaaaaaaaaaaa").mkdir(parents=True)
    (inputs / "good.yaml").write_text(grid_text(rest="seeds: [0]\n"))
    (inputs / "published.yaml").write_text(grid_text(rest="seeds: [0]\n").replace("name: bad", "name: published"))
    (inputs / "broken.yaml").write_text(grid_text(rest="seeds: [0]\n").replace("name: bad", "name: broken"))
    (store / "grids").mkdir(exist_ok=True)
    (store / "grids" / "broken.json").write_text('{"name": "broken", "cel')
    record = {"name": "published", "source": "x", "cells": [{"id": "aaaaaaaaaaaa", "axes": {"seed": 0}}]}
    (store / "grids" / "published.json").write_text(json.dumps(record))
    places = {
        "{dir}": inputs,
        "{binary}": inputs / "binary.yaml",
        "{file}": inputs / "file",
        "{list_json}": inputs / "list.json",
        "{missing}": tmp_path / "no-such-store",
        "{empty}": inputs / "empty",
        "{cells_only}": inputs / "cells-only",
        "{grid}": inputs / "good.yaml",
        "{published_grid}": inputs / "published.yaml",
        "{damaged_grid}": inputs / "broken.yaml",
    }
    for placeholder, path in places.items():
        args = [a.replace(placeholder, str(path)) for a in args]
    if "--results" not in args and args[0] not in ("instrument", "perf", "data") and "--from-published" not in args:
        args += ["--results", str(store)]
    assert_refused(args, expected, store, capsys)


def _mnist_folder(tmp_path: Path, write) -> Path:
    root = tmp_path / "data"
    (root / "mnist").mkdir(parents=True)
    for name in (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ):
        write(root / "mnist" / name)
    return root


def _junk(path: Path) -> None:
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + bytes(100)))


def _truncated(path: Path) -> None:
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + bytes(1000))[:30])


DATA = [
    ("file with the wrong checksum", _junk, "checksum mismatch (expected sha256"),
    ("truncated file", _truncated, "checksum mismatch (expected sha256"),
    ("missing file, offline", lambda path: None, "file missing (expected sha256"),
]


@pytest.mark.parametrize(("write", "expected"), [d[1:] for d in DATA], ids=[d[0] for d in DATA])
def test_bad_data_is_one_error_before_any_cell(tmp_path, store, capsys, monkeypatch, write, expected):
    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr("torchvision.datasets.MNIST", offline)
    root = _mnist_folder(tmp_path, write)
    grid = tmp_path / "mnist.yaml"
    grid.write_text(grid_text(GOOD_BASE.replace("synthetic", "mnist"), rest="seeds: [0, 1, 2]\n"))
    assert_refused(
        ["run", "--grid", grid, "--results", store, "--device", "cpu", "--data-dir", root], expected, store, capsys
    )


def test_there_are_at_least_forty_distinct_bad_inputs():
    cases = GRID_FILES + OPTIONS + SET_CELLS + OTHER_COMMANDS + DATA
    assert len({c[0] for c in cases}) == len(cases) >= 130

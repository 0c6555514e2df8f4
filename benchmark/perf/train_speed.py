"""`bench perf train`: the project's trainer and packed training against a plain tutorial loop.

All run on the same data and device, in one process but for (d):
  (a) baseline: torchvision's FashionMNIST class (a per-item dataset) with ToTensor, a
      DataLoader with batch 128 and shuffling, and the usual loop (loss.item() each step);
  (b) the trainer: uint8 tensors on the device, index batches of a seeded permutation;
  (c) packed: K cells (seeds 0..K-1) trained together with torch.func;
  (d) on the CPU, one cell per thread in separate single-threaded processes.
The model, loss and optimiser are the same in all. FLOPs are counted with
torch.utils.flop_counter on one training step; the peak is a measured fp32 matmul.
"""

from __future__ import annotations

import gzip
import multiprocessing
import resource
import shutil
import tempfile
import time
from pathlib import Path

import torch

from benchmark import paths
from benchmark.conditions import prepare_conditions
from benchmark.config import CellConfig
from benchmark.data import load_dataset
from benchmark.models.cost import training_flops_per_image
from benchmark.models.loss import cvae_loss
from benchmark.runner.provenance import device_name
from benchmark.training import train_cell
from benchmark.training.packed import train_packed
from benchmark.training.trainer import build_seeded_model, cell_data, resolve_device

PRESETS = {"article-conv": 128, "tutorial-mlp": 20}  # backbone -> latent size of the published model


def matmul_peak(device: torch.device, size: int = 2048, repeats: int = 10) -> float:
    """Best fp32 matmul FLOP/s over a few runs."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def flops_per_image(config: CellConfig, device: torch.device, data_dir=None) -> float:
    """FLOPs of one training step per image, on a few images of the cell's own data and conditions (any
    condition kind; the count per image does not depend on the batch size)."""
    bundle = load_dataset(config.dataset, config.image_size, data_dir)
    conditions = prepare_conditions(config, bundle)
    model = build_seeded_model(config, conditions, device)
    x = bundle.train.images[:8].to(device).float() / 255
    c = conditions.train(torch.Generator().manual_seed(0))[:8].to(device)
    return training_flops_per_image(model, x, c, config.recon_loss)


def tutorial_baseline(config: CellConfig, n_images: int, device: torch.device, data_dir=None) -> float:
    """Images per second of the tutorial loop over n_images (one pass)."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets
    from torchvision.transforms import ToTensor

    torch.use_deterministic_algorithms(False)
    with tempfile.TemporaryDirectory() as root:
        raw = Path(root) / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        for name in (
            f"{split}-{kind}-idx{n}-ubyte" for split in ("train", "t10k") for kind, n in (("images", 3), ("labels", 1))
        ):
            source = paths.data_dir(data_dir) / "fashion-mnist" / f"{name}.gz"
            with gzip.open(source) as packed, open(raw / name, "wb") as plain:
                shutil.copyfileobj(packed, plain)
        dataset = datasets.FashionMNIST(root, train=True, transform=ToTensor())
        loader = DataLoader(Subset(dataset, range(n_images)), batch_size=config.batch_size, shuffle=True)
        bundle = load_dataset(config.dataset, config.image_size, data_dir)
        model = build_seeded_model(config, prepare_conditions(config, bundle), device)
        model = model.to(memory_format=torch.contiguous_format)  # the usual loop's layout
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        model.train()
        start = time.perf_counter()
        total = 0.0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits, kl = model(x, y)
            loss = cvae_loss(logits, x, kl, config.recon_loss, config.beta).total
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        _sync(device)
        return n_images / (time.perf_counter() - start)


def perf_config(backbone: str, n_images: int) -> CellConfig:
    return CellConfig(
        backbone=backbone,
        conditioning="concat",
        latent_dim=PRESETS[backbone],
        batch_size=128,
        lr=1e-3,
        epochs=1,
        train_size=n_images,
    )


def measure(config: CellConfig, plain_baseline: float, pack: int, device: torch.device, data_dir=None) -> dict:
    tuned_baseline = tutorial_baseline(config, config.train_size, device, data_dir)  # under the trainer's process setup
    trainer = train_cell(config, device=device, data_dir=data_dir).log[0]["images_per_second"]
    two_epochs = config.model_copy(update={"epochs": 2})
    compiled_log = train_cell(
        two_epochs, device=device, compile=True, data_dir=data_dir
    ).log  # epoch 1 pays the compilation
    configs = [config.model_copy(update={"seed": s}) for s in range(pack)]
    packed = train_packed(configs, device=device, data_dir=data_dir)[0].log[0]["images_per_second"]
    workers = torch.get_num_threads() if device.type == "cpu" else 0
    return {
        "backbone": config.backbone,
        "images": config.train_size,
        "baseline_ips": plain_baseline,
        "tuned_baseline_ips": tuned_baseline,
        "trainer_ips": trainer,
        "compiled_ips": compiled_log[1]["images_per_second"],
        "compile_seconds": compiled_log[0]["seconds"] - compiled_log[1]["seconds"],
        "packed_ips": packed,
        "pack": pack,
        "side_by_side_ips": side_by_side(config, workers, data_dir) if workers > 1 else None,
        "workers": workers,
        "kernel_ceiling_ips": kernel_ceiling(config, data_dir) if device.type == "cpu" else None,
        "flops_per_image": flops_per_image(config, device, data_dir),
    }


# Where a training step does its arithmetic: matmuls and (transposed) convolutions, forward and backward.
KERNEL_OPS = (
    "aten::mm",
    "aten::addmm",
    "aten::bmm",
    "aten::_convolution",
    "aten::mkldnn_convolution",
    "aten::convolution_backward",
)


def kernel_ceiling(config: CellConfig, data_dir=None) -> float:
    """Images/s the trainer would reach on the CPU if everything but its matmul and convolution
    kernels took no time: one profiled epoch, counting those kernels' self time. Called after (b)
    has trained the same config in this process, so the kernels are warm."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiled:
        train_cell(config, device="cpu", bundle=cell_data(config, data_dir))
    kernel_us = sum(e.self_cpu_time_total for e in profiled.key_averages() if e.key in KERNEL_OPS)
    return config.train_size / (kernel_us / 1e6)


def side_by_side(config: CellConfig, workers: int, data_dir=None) -> float:
    """Aggregate images/s of `workers` cells (seeds 0..workers-1) trained at once on the CPU, one
    process and one thread each: how the Ray executor runs a grid on one machine by default."""
    configs = [config.model_copy(update={"seed": s}) for s in range(workers)]
    return sum(log[0]["images_per_second"] for log in train_side_by_side(configs, threads=1, data_dir=data_dir))


def train_side_by_side(configs: list[CellConfig], threads: int | None, data_dir=None) -> list[list[dict]]:
    """Each config trained by the trainer in a process of its own with `threads` torch threads (None:
    torch's default), all starting together once every process holds its data; their epoch logs, in order."""
    context = multiprocessing.get_context("spawn")
    ready, results = context.Barrier(len(configs)), context.Queue()
    processes = [
        context.Process(target=_train_in_process, args=(k, config, threads, data_dir, ready, results))
        for k, config in enumerate(configs)
    ]
    for process in processes:
        process.start()
    logs = dict(results.get() for _ in processes)
    for process in processes:
        process.join()
    return [logs[k] for k in range(len(configs))]


def _train_in_process(k: int, config: CellConfig, threads: int | None, data_dir, ready, results) -> None:
    if threads:
        torch.set_num_threads(threads)
    bundle = cell_data(config, data_dir)
    ready.wait()  # every worker has its data; they train at the same time
    results.put((k, train_cell(config, device="cpu", bundle=bundle).log))


def run_perf(
    n_images: int = 12_800, pack: int = 4, device: str = "auto", presets=tuple(PRESETS), data_dir=None
) -> dict:
    device_obj = resolve_device(device)
    configs = [perf_config(b, n_images) for b in presets]
    # The tutorial loops run first, in the process as Python starts it; the trainer's CPU setup
    # (training/cpu.py) is process-wide, so (a') repeats each loop under it.
    plain = [tutorial_baseline(c, n_images, device_obj, data_dir) for c in configs]
    rows = [measure(c, p, pack, device_obj, data_dir) for c, p in zip(configs, plain)]
    data = load_dataset("fashion_mnist", 28, data_dir)
    return {
        "device": device_name(device_obj),
        "matmul_peak": matmul_peak(device_obj),
        "rows": rows,
        "dataset_bytes": data.train.images.numel() + data.test.images.numel(),
        "peak_memory_bytes": _peak_memory(device_obj),
    }


def _peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def measured_runs(row: dict) -> list[tuple[str, float]]:
    """(label, images per second) of each run in one backbone's row, in table order."""
    runs = [
        ("(a) tutorial loop", row["baseline_ips"]),
        ("(a') tutorial loop under the trainer's CPU setup", row["tuned_baseline_ips"]),
        ("(b) trainer", row["trainer_ips"]),
        (f"(b') trainer, compiled (compilation {row['compile_seconds']:.0f} s, not counted)", row["compiled_ips"]),
        (f"(c) packed, {row['pack']} cells (aggregate)", row["packed_ips"]),
    ]
    if row["side_by_side_ips"] is not None:
        label = f"(d) {row['workers']} cells side by side, one process and thread each (aggregate)"
        runs.append((label, row["side_by_side_ips"]))
    return runs


def _row_notes(row: dict, peak: float) -> str:
    text = f"- {row['backbone']}: {row['flops_per_image'] / 1e6:.1f} MFLOP per image (fwd+bwd); {row['images']:,} "
    text += "images per run."
    ceiling = row["kernel_ceiling_ips"]
    if ceiling:
        text += (
            " Its matmul and convolution kernels alone (torch.profiler self time over one epoch of (b)) run at "
            f"{ceiling:,.0f} images/s, {100 * row['flops_per_image'] * ceiling / peak:.0f}% of peak: no loop built "
            f"on them passes that; (b) reaches {100 * row['trainer_ips'] / ceiling:.0f}% of it."
        )
    return text


def render_markdown(result: dict) -> str:
    peak = result["matmul_peak"]
    lines = [
        "# Training speed (`bench perf train`)\n",
        f"Device: {result['device']}. Measured fp32 matmul peak (2048x2048): {peak / 1e9:.1f} GFLOP/s.\n",
        "(a) tutorial loop: torchvision FashionMNIST + ToTensor + DataLoader(batch 128, shuffle), loss.item() each "
        "step, run first, in the process as Python starts it; (a') the same loop after the trainer's CPU setup "
        "(deterministic kernels; glibc keeps freed memory for reuse), which is process-wide; (b) this project's "
        "trainer; (b') the trainer with `--compile`, second epoch; (c) packed training (torch.func) of K cells; "
        "(d) one cell per CPU thread in separate processes, as the Ray executor runs a grid on one machine. "
        "Same model, loss, optimiser (Adam, lr 1e-3, batch 128) and images in all; one pass each. "
        "% of peak = FLOP/image (fwd+bwd, torch.utils.flop_counter) x images/s / matmul peak.\n",
        "| backbone | run | images/s | vs (a) | % of peak |",
        "|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        for label, ips in measured_runs(row):
            lines.append(
                f"| {row['backbone']} | {label} | {ips:,.0f} | {ips / row['baseline_ips']:.2f}x | "
                f"{100 * row['flops_per_image'] * ips / peak:.0f}% |"
            )
    lines += ["", *[_row_notes(row, peak) for row in result["rows"]]]
    lines += [
        "",
        f"Data set held once in memory as uint8: {result['dataset_bytes'] / 2**20:.1f} MiB (Fashion-MNIST train + "
        f"test). Peak memory of the process: {result['peak_memory_bytes'] / 2**20:.0f} MiB.\n",
    ]
    return "\n".join(lines)

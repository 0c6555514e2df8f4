"""`bench perf train`: the project's trainer and packed training against a plain tutorial loop.

All three run in one process on the same data and device:
  (a) baseline: torchvision's FashionMNIST class (a per-item dataset) with ToTensor, a
      DataLoader with batch 128 and shuffling, and the usual loop (loss.item() each step);
  (b) the trainer: uint8 tensors on the device, index batches of a seeded permutation;
  (c) packed: K cells (seeds 0..K-1) trained together with torch.func.
The model, loss and optimiser are the same in all three. FLOPs are counted with
torch.utils.flop_counter on one training step; the peak is a measured fp32 matmul.
"""

from __future__ import annotations

import gzip
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
from benchmark.models.loss import cvae_loss
from benchmark.runner.provenance import device_name
from benchmark.training import train_cell
from benchmark.training.packed import train_packed
from benchmark.training.trainer import build_seeded_model, resolve_device

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


def flops_per_image(config: CellConfig, device: torch.device) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    bundle = load_dataset(config.dataset, config.image_size)
    model = build_seeded_model(config, prepare_conditions(config, bundle), device)
    x = bundle.train.images[: config.batch_size].to(device).float() / 255
    c = bundle.train.labels[: config.batch_size].to(device)
    with FlopCounterMode(display=False) as counter:
        logits, mu, logvar = model(x, c)
        cvae_loss(logits, x, mu, logvar, config.recon_loss, config.beta).total.backward()
    return counter.get_total_flops() / config.batch_size


def tutorial_baseline(config: CellConfig, n_images: int, device: torch.device) -> float:
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
            source = paths.data_dir() / "fashion-mnist" / f"{name}.gz"
            with gzip.open(source) as packed, open(raw / name, "wb") as plain:
                shutil.copyfileobj(packed, plain)
        dataset = datasets.FashionMNIST(root, train=True, transform=ToTensor())
        loader = DataLoader(Subset(dataset, range(n_images)), batch_size=config.batch_size, shuffle=True)
        bundle = load_dataset(config.dataset, config.image_size)
        model = build_seeded_model(config, prepare_conditions(config, bundle), device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
        model.train()
        start = time.perf_counter()
        total = 0.0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            logits, mu, logvar = model(x, y)
            loss = cvae_loss(logits, x, mu, logvar, config.recon_loss, config.beta).total
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        _sync(device)
        return n_images / (time.perf_counter() - start)


def measure(backbone: str, n_images: int, pack: int, device: torch.device) -> dict:
    config = CellConfig(
        backbone=backbone,
        conditioning="concat",
        latent_dim=PRESETS[backbone],
        batch_size=128,
        lr=1e-3,
        epochs=1,
        train_size=n_images,
    )
    baseline = tutorial_baseline(config, n_images, device)
    trainer = train_cell(config, device=device).log[0]["images_per_second"]
    two_epochs = config.model_copy(update={"epochs": 2})
    compiled_log = train_cell(two_epochs, device=device, compile=True).log  # epoch 1 pays the compilation
    compiled = compiled_log[1]["images_per_second"]
    compile_seconds = compiled_log[0]["seconds"] - compiled_log[1]["seconds"]
    configs = [config.model_copy(update={"seed": s}) for s in range(pack)]
    packed = train_packed(configs, device=device)[0].log[0]["images_per_second"]
    flops = flops_per_image(config, device)
    return {
        "backbone": backbone,
        "images": n_images,
        "baseline_ips": baseline,
        "trainer_ips": trainer,
        "compiled_ips": compiled,
        "compile_seconds": compile_seconds,
        "packed_ips": packed,
        "pack": pack,
        "flops_per_image": flops,
        "trainer_flops": flops * trainer,
        "compiled_flops": flops * compiled,
        "packed_flops": flops * packed,
    }


def run_perf(n_images: int = 12_800, pack: int = 4, device: str = "auto") -> dict:
    device_obj = resolve_device(device)
    rows = [measure(b, n_images, pack, device_obj) for b in PRESETS]
    data = load_dataset("fashion_mnist", 28)
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


def render_markdown(result: dict) -> str:
    peak = result["matmul_peak"]
    lines = [
        "# Training speed (`bench perf train`)\n",
        f"Device: {result['device']}. Measured fp32 matmul peak (2048x2048): {peak / 1e9:.1f} GFLOP/s.\n",
        "(a) tutorial loop: torchvision FashionMNIST + ToTensor + DataLoader(batch 128, shuffle), "
        "loss.item() each step; (b) this project's trainer (eager); (b') the trainer with `--compile`, second "
        "epoch (the first pays the compilation, shown in brackets); (c) packed training of K cells "
        "(aggregate images/s). Same model, loss, optimiser and images in all; one pass each.\n",
        "| backbone | images | (a) baseline img/s | (b) trainer img/s | (b)/(a) | (b') compiled img/s | (b')/(a) "
        "| (c) packed img/s (K) | (c)/(a) | FLOP/image (fwd+bwd) | (b) % of peak | (b') % of peak | (c) % of peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['backbone']} | {r['images']:,} | {r['baseline_ips']:,.0f} | {r['trainer_ips']:,.0f} | "
            f"{r['trainer_ips'] / r['baseline_ips']:.2f}x | {r['compiled_ips']:,.0f} ({r['compile_seconds']:.0f} s) | "
            f"{r['compiled_ips'] / r['baseline_ips']:.2f}x | {r['packed_ips']:,.0f} ({r['pack']}) | "
            f"{r['packed_ips'] / r['baseline_ips']:.2f}x | {r['flops_per_image'] / 1e6:.1f} M | "
            f"{100 * r['trainer_flops'] / peak:.0f}% | {100 * r['compiled_flops'] / peak:.0f}% | "
            f"{100 * r['packed_flops'] / peak:.0f}% |"
        )
    lines += [
        "",
        f"Data set held once in memory as uint8: {result['dataset_bytes'] / 2**20:.1f} MiB (Fashion-MNIST train + "
        f"test). Peak memory of the process: {result['peak_memory_bytes'] / 2**20:.0f} MiB.\n",
    ]
    return "\n".join(lines)

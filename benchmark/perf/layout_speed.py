"""`bench perf layout`: the training step of a grid cell in the plain contiguous layout (NCHW, the baseline)
beside channels_last (NHWC, the layout models/cvae.py gives convolutional models), alternating, on the same
batch and the same initial weights; and where each spends its time (torch.profiler self time per operator).

A step is what the trainer's loop does per batch: forward, loss, backward and the fused Adam update."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from benchmark.conditions import prepare_conditions
from benchmark.config import CellConfig
from benchmark.runner.provenance import cpu_name
from benchmark.training.cpu import configure_cpu
from benchmark.training.trainer import build_seeded_model, cell_data, is_channels_last, step_loss_function

LAYOUTS = ("contiguous", "channels_last")
TOP_OPERATORS = 8
PROFILED_STEPS = 5


def _training_step(config: CellConfig, conditions, layout: str, batch: tuple) -> tuple[Callable[[], float], bool]:
    """One step of the trainer's loop on `batch`, for the cell's initial model in `layout`; and whether its
    convolution weights are channels_last."""
    x, c, eps = batch
    model = build_seeded_model(config, conditions, torch.device("cpu"))
    if layout == "contiguous":
        model = model.to(memory_format=torch.contiguous_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)
    step_loss = step_loss_function(model, config, torch.device("cpu"), compile=False)
    model.train()

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss, _ = step_loss(x, c, eps, config.beta)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step, any(is_channels_last(p) for p in model.parameters())


def _images_per_second(step: Callable[[], float], steps: int, batch_size: int) -> float:
    step()  # warm-up: oneDNN picks and caches its kernels on the first call
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - start)


def _operator_times(step: Callable[[], float], steps: int) -> dict[str, float]:
    """Milliseconds of self CPU time per step of each operator (its own time, not its callees'), and 'total'."""
    step()
    with profile(activities=[ProfilerActivity.CPU]) as profiled:
        for _ in range(steps):
            step()
    times = {e.key: e.self_cpu_time_total / 1000 / steps for e in profiled.key_averages()}
    return {**times, "total": sum(times.values())}


def measure_layouts(config: CellConfig, steps: int, repeats: int, threads: int, data_dir=None) -> dict:
    """Images/s of each layout (`repeats` alternating runs of `steps` steps each), their operator profiles,
    and the first step's loss in each (equal up to float rounding), under the trainer's CPU setup."""
    configure_cpu()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _measure(config, steps, repeats, data_dir) | {"threads": threads}
    finally:
        torch.set_num_threads(previous_threads)


def _measure(config: CellConfig, steps: int, repeats: int, data_dir) -> dict:
    bundle = cell_data(config, data_dir)
    conditions = prepare_conditions(config, bundle)
    x = bundle.train.images[: config.batch_size].float() / 255
    c = conditions.train(torch.Generator().manual_seed(0))[: len(x)]
    eps = torch.randn(len(x), config.latent_dim, generator=torch.Generator().manual_seed(1))

    channels_last_weights = {}

    def fresh_step(layout: str) -> Callable[[], float]:
        step, channels_last_weights[layout] = _training_step(config, conditions, layout, (x, c, eps))
        return step

    rates: dict[str, list[float]] = {layout: [] for layout in LAYOUTS}
    for _ in range(repeats):
        for layout in LAYOUTS:
            rates[layout].append(_images_per_second(fresh_step(layout), steps, len(x)))
    return {
        "config": config,
        "steps": steps,
        "batch_size": len(x),
        "rates": rates,
        "median": {layout: statistics.median(r) for layout, r in rates.items()},
        "profiles": {layout: _operator_times(fresh_step(layout), PROFILED_STEPS) for layout in LAYOUTS},
        "first_loss": {layout: fresh_step(layout)() for layout in LAYOUTS},
        "channels_last_weights": channels_last_weights,
    }


def render_markdown(result: dict, cell_label: str) -> str:
    return "\n".join([*_header(result, cell_label), *_rates_table(result), *_profile_table(result["profiles"])]) + "\n"


def _header(result: dict, cell_label: str) -> list[str]:
    config = result["config"]
    return [
        "# Memory layout of a conv cell's training step (`bench perf layout`)",
        "",
        f"Cell: {cell_label} (backbone {config.backbone}, {config.image_size} px, latent {config.latent_dim}, "
        f"batch {result['batch_size']}, batchnorm {config.batchnorm}). CPU: {cpu_name()}, "
        f"{result['threads']} torch thread(s), the trainer's CPU setup. Each run: {result['steps']} steps "
        "(forward, loss, backward, fused Adam) after one warm-up step, from the cell's initial weights on its "
        f"first {result['batch_size']} training images; the two layouts alternate, median of the runs.",
        "",
    ]


def _rates_table(result: dict) -> list[str]:
    median, first = result["median"], result["first_loss"]
    lines = ["| layout | images/s (median) | runs | vs contiguous |", "|---|---|---|---|"]
    for layout in LAYOUTS:
        runs = ", ".join(f"{r:,.0f}" for r in result["rates"][layout])
        lines.append(f"| {layout} | {median[layout]:,.0f} | {runs} | {median[layout] / median['contiguous']:.2f}x |")
    gap = abs(first["channels_last"] - first["contiguous"]) / abs(first["contiguous"])
    return [
        *lines,
        "",
        f"channels_last / contiguous: **{median['channels_last'] / median['contiguous']:.2f}x**. The first step's "
        f"loss from the same weights and batch: {first['contiguous']:.6f} (contiguous), "
        f"{first['channels_last']:.6f} (channels_last), a relative difference of {gap:.1e}: the same "
        "computation, summed in another order.",
        "",
    ]


def _profile_table(profiles: dict[str, dict[str, float]]) -> list[str]:
    lines = [
        f"Where a step's time goes (torch.profiler self CPU time in ms per step over {PROFILED_STEPS} steps, the "
        "operators that take most in either layout; a share of the step's total in brackets):",
        "",
        "| operator | contiguous | channels_last |",
        "|---|---|---|",
    ]
    ranked = sorted(
        {op for times in profiles.values() for op in times if op != "total"},
        key=lambda op: -max(times.get(op, 0.0) for times in profiles.values()),
    )
    for op in [*ranked[:TOP_OPERATORS], "total"]:
        lines.append(f"| {op} | {' | '.join(_share(profiles[layout], op) for layout in LAYOUTS)} |")
    return lines


def _share(times: dict[str, float], op: str) -> str:
    ms = times.get(op, 0.0)
    return f"{ms:,.1f}" if op == "total" else f"{ms:,.1f} ({ms / times['total']:.0%})"

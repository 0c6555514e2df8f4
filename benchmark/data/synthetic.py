"""A tiny synthetic data set, generated from a fixed seed: ten classes of shapes on 28x28 grey.

It exists so that the runner, packing, store, report and CLI can be exercised in seconds and
without the real data sets. Every step is integer arithmetic on torch's seeded generator
(Mersenne Twister), so the same images come out bit for bit on every machine.
"""

from __future__ import annotations

import torch

SIZE = 28
TRAIN_IMAGES, TEST_IMAGES = 6000, 1000
SEED = 20240531
CLASS_NAMES = (
    "hbar",
    "vbar",
    "diagonal",
    "antidiagonal",
    "ring",
    "disc",
    "square",
    "cross",
    "checker",
    "corners",
)


def _templates() -> torch.Tensor:
    """(10, 28, 28) bool: one shape per class, centred."""
    i, j = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    di, dj = i - SIZE // 2, j - SIZE // 2
    r2 = di * di + dj * dj
    box = torch.maximum(di.abs(), dj.abs())
    shapes = [
        di.abs() <= 3,
        dj.abs() <= 3,
        (i - j).abs() <= 3,
        (i + j - (SIZE - 1)).abs() <= 3,
        (r2 >= 36) & (r2 <= 100),
        r2 <= 36,
        (box >= 7) & (box <= 10),
        (di.abs() <= 2) | (dj.abs() <= 2),
        ((i // 7) + (j // 7)) % 2 == 0,
        ((i < 10) & (j < 10)) | ((i >= 18) & (j >= 18)),
    ]
    return torch.stack(shapes)


def generate(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` images (uint8, (N, 1, 28, 28)) with balanced labels, from `seed`."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % len(CLASS_NAMES)
    labels = labels[torch.randperm(count, generator=gen)]
    shapes = _templates()[labels].long()
    brightness = torch.randint(150, 256, (count, 1, 1), generator=gen)
    shifted = torch.empty_like(shapes)
    shifts = torch.randint(-3, 4, (count, 2), generator=gen)
    for k, (dy, dx) in enumerate(shifts.tolist()):
        shifted[k] = torch.roll(shapes[k], (dy, dx), dims=(0, 1))
    noise = torch.randint(0, 41, (count, SIZE, SIZE), generator=gen)
    images = (shifted * brightness + noise).clamp(0, 255).to(torch.uint8)
    return images.unsqueeze(1), labels


def splits() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return {"train": generate(TRAIN_IMAGES, SEED), "test": generate(TEST_IMAGES, SEED + 1)}

"""Binarised MNIST-style data: each pixel drawn as Bernoulli(intensity / 255), the field's standard
setting for VAE likelihoods.

- fixed: one draw of the train and test splits from FIXED_SEED, the same for every cell (Larochelle's
  published binarisation files are not available offline; this is the same protocol with another draw).
- dynamic: training images are drawn again every time they are used (the trainer, from the cell's own
  stream); the test split is the fixed draw, so every cell is measured on the same binary images.

The draw compares integers (uniform 0..254 < intensity), so P(1) is exactly intensity / 255 and the
images are bit-identical on every machine.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from benchmark.data.datasets import DatasetBundle, Split

FIXED_SEED = 0


def draw(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """uint8 intensities -> uint8 {0, 255}, P(255) = intensity / 255."""
    uniform = torch.randint(0, 255, images.shape, generator=generator, dtype=torch.uint8, device=images.device)
    return (uniform < images).to(torch.uint8) * 255


def _fixed(split: Split, seed: int) -> Split:
    return replace(split, images=draw(split.images, torch.Generator().manual_seed(seed)))


def binarized(bundle: DatasetBundle, mode: str, seed: int = FIXED_SEED) -> DatasetBundle:
    """`seed`: which fixed draw (the cell field binarize_seed; 0 for every shipped grid)."""
    if mode == "none":
        return bundle
    train = _fixed(bundle.train, seed) if mode == "fixed" else bundle.train
    test = _fixed(bundle.test, seed + 1)
    source = {**bundle.source, "binarize": mode, "binarize_seed": seed}
    return replace(bundle, train=train, test=test, source=source)

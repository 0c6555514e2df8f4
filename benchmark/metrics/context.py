"""What every metric group reads: the trained cell, the protocol's settings, its test images and
conditions, its generated samples and the random streams of evaluation."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import torch

from benchmark import paths
from benchmark.fileio import atomic_write
from benchmark.metrics.protocol import EvalConfig
from benchmark.seeding import stream_generator
from benchmark.training.trainer import TrainedCell

COMPLETIONS = 10  # sampled completions of each test input (image tasks)
RELIABILITY_BINS = 15  # equal-width confidence bins of the generative classifier's calibration (Guo et al. 2017)


@dataclass
class EvalContext:
    trained: TrainedCell
    eval: EvalConfig
    data_dir: object = None
    notes: dict = field(default_factory=dict)  # unavailable metrics and their reasons, extractor info

    @property
    def model(self):
        return self.trained.model

    @property
    def device(self) -> torch.device:
        return self.trained.device

    @functools.cached_property
    def recon_index(self) -> torch.Tensor:
        n = len(self.trained.bundle.test)
        size = min(self.eval.recon_size or n, n)
        if size == n:
            return torch.arange(n)
        gen = stream_generator(self.trained.config.seed, "subset")
        return torch.randperm(n, generator=gen)[:size].sort().values

    def batches(self, index: torch.Tensor):
        test, conds = self.trained.bundle.test, self.trained.conditions.test
        for part in index.split(self.eval.batch_size):
            yield test.images[part].to(self.device).float().div_(255), conds[part].to(self.device)

    @functools.cached_property
    def sample_conditions(self) -> torch.Tensor:
        """The test split's conditions in order, repeated to n_samples, so the class mix matches."""
        conds = self.trained.conditions.test
        reps = math.ceil(self.eval.n_samples / len(conds))
        return conds.repeat(reps, *[1] * (conds.dim() - 1))[: self.eval.n_samples]

    @functools.cached_property
    def sample_labels(self) -> torch.Tensor:
        """The class of the test image behind each sample's condition (the condition itself for labels)."""
        labels = self.trained.bundle.test.labels
        return labels.repeat(math.ceil(self.eval.n_samples / len(labels)))[: self.eval.n_samples]

    @functools.cached_property
    def samples(self) -> torch.Tensor:
        """n_samples generated images, uint8, noise from the cell's seed."""
        return self.generated(self.model.sample)

    def generated(self, sample) -> torch.Tensor:
        """n_samples images from `sample(conditions, generator)` (the model's sampler or another), uint8."""
        gen = self.generator("sample")
        out = [
            sample(c.to(self.device), gen).mul(255).round().to(torch.uint8).cpu()
            for c in self.sample_conditions.split(self.eval.batch_size)
        ]
        return torch.cat(out)

    def likelihood_images(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The test images of the likelihood metrics (nll_size of them, None: the whole split) and conditions."""
        index = self.recon_index if self.eval.nll_size is None else self.recon_index[: self.eval.nll_size]
        x = self.trained.bundle.test.images[index].to(self.device).float() / 255
        return x, self.trained.conditions.test[index].to(self.device)

    def generator(self, stream: str) -> torch.Generator:
        """A fresh generator of one of the cell's evaluation streams (the same draws each time)."""
        return stream_generator(self.trained.config.seed, stream, self.device)

    def unavailable(self, names: list[str], reason: str) -> dict:
        for name in names:
            self.notes.setdefault("unavailable", {})[name] = reason
        return dict.fromkeys(names)


def real_features(bundle, image_size: int, extractor_key: str, compute, split: str = "test") -> np.ndarray:
    """Features of real images of a split, cached per (data set, split, size, extractor)."""
    variant = bundle.source.get("binarize", "none")
    path = paths.cache_dir() / "real_features" / f"{bundle.name}-{variant}-{split}-{image_size}-{extractor_key}.npy"
    if path.exists():
        return np.load(path)
    features = np.asarray(compute(), dtype=np.float64)
    atomic_write(path, lambda tmp: np.save(open(tmp, "wb"), features))
    return features

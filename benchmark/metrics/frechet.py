"""Distances between feature sets, through clean-fid's own functions (not copies)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


@dataclass
class GaussianStats:
    mu: np.ndarray
    sigma: np.ndarray

    @classmethod
    def of(cls, features: np.ndarray) -> GaussianStats:
        features = np.asarray(features, dtype=np.float64)
        return cls(features.mean(0), np.cov(features, rowvar=False))


def frechet_distance(a: GaussianStats, b: GaussianStats) -> float:
    """clean-fid adds eps to the diagonals when the product is singular (dead ReLU features)."""
    from cleanfid import fid as cleanfid  # imports torchvision: seconds, paid only when measuring

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Matrix is singular")
        return float(cleanfid.frechet_distance(a.mu, a.sigma, b.mu, b.sigma))


def kernel_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """KID; clean-fid draws its subsets from numpy's global generator, so it is seeded here."""
    from cleanfid import fid as cleanfid

    state = np.random.get_state()
    np.random.seed(0)
    try:
        return float(cleanfid.kernel_distance(features_a, features_b))
    finally:
        np.random.set_state(state)

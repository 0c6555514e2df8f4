"""What a report reads from trained checkpoints (inference only): latent maps."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.manifold import TSNE

from benchmark.store import CellStore
from benchmark.training.trainer import load_stored_cell

TSNE_POINTS = 2000


def tsne_of_latent_means(store: CellStore, cell_id: str, data_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """t-SNE (seeded) of E_q[z] for the first TSNE_POINTS test images; returns (points, labels)."""
    trained = load_stored_cell(store, cell_id, data_dir)
    model, bundle, conditions = trained.model, trained.bundle, trained.conditions
    x = bundle.test.images[:TSNE_POINTS].float() / 255
    with torch.no_grad():
        mu, _ = model.encode(x, conditions.test[:TSNE_POINTS])
    points = TSNE(n_components=2, init="pca", random_state=0, perplexity=30).fit_transform(mu.double().numpy())
    return points, bundle.test.labels[:TSNE_POINTS].numpy()

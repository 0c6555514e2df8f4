"""What a report reads from trained checkpoints (inference only): latent maps and interpolations."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.manifold import TSNE
from torchvision.utils import make_grid

from benchmark.config import CellConfig
from benchmark.models.loss import decoder_mean
from benchmark.store import CellStore
from benchmark.store.cells import CHECKPOINT, png_bytes
from benchmark.training.trainer import load_trained_cell

TSNE_POINTS = 2000


def load_cell(store: CellStore, cell_id: str, data_dir=None):
    config = CellConfig(**store.read(cell_id, "config.json")["cell"])
    trained = load_trained_cell(config, store.cell_dir(cell_id) / CHECKPOINT, data_dir)
    return trained.model, trained.bundle, trained.conditions


def tsne_of_latent_means(store: CellStore, cell_id: str, data_dir=None) -> tuple[np.ndarray, np.ndarray]:
    """t-SNE (seeded) of E_q[z] for the first TSNE_POINTS test images; returns (points, labels)."""
    model, bundle, conditions = load_cell(store, cell_id, data_dir)
    x = bundle.test.images[:TSNE_POINTS].float() / 255
    with torch.no_grad():
        mu, _ = model.encode(x, conditions.test[:TSNE_POINTS])
    points = TSNE(n_components=2, init="pca", random_state=0, perplexity=30).fit_transform(mu.double().numpy())
    return points, bundle.test.labels[:TSNE_POINTS].numpy()


def interpolation_strip(store: CellStore, cell_id: str, steps: int = 10, data_dir=None) -> bytes:
    """Rows of images decoded from z moving linearly between the posterior means of two test images;
    the condition is held at the first image's."""
    model, bundle, conditions = load_cell(store, cell_id, data_dir)
    rows = []
    for first, second in ((0, 1), (2, 3), (4, 5)):
        x = bundle.test.images[[first, second]].float() / 255
        c = conditions.test[[first, second]]
        with torch.no_grad():
            mu, _ = model.encode(x, c)
            weights = torch.linspace(0, 1, steps).unsqueeze(1)
            z = (1 - weights) * mu[0] + weights * mu[1]
            logits = model.decode_logits(z, c[:1].expand(steps, *c.shape[1:]))
            rows.append(decoder_mean(logits, model.recon_loss))  # the continuous Bernoulli's mean is not sigmoid
    return png_bytes(make_grid(torch.cat(rows), nrow=steps, padding=1, pad_value=1.0))

"""How long the evaluation protocol takes on one 28x28 cell (Inception FID aside)."""

from __future__ import annotations

import time

from benchmark.config import CellConfig
from benchmark.metrics.classifier import domain_classifier
from benchmark.metrics.evaluate import evaluate_cell
from benchmark.metrics.protocol import EvalConfig
from benchmark.training import train_cell


def time_evaluation(
    n_samples: int = 10_000, device: str = "cpu", data_dir=None, nll_k: int = 100, nll_size: int | None = 500
) -> dict:
    config = CellConfig(
        backbone="article-conv",
        conditioning="concat",
        latent_dim=128,
        recon_loss="cbernoulli",  # a density of grey pixels: the likelihood groups run
        train_size=2000,
        epochs=1,
    )
    trained = train_cell(config, device=device, data_dir=data_dir)
    domain_classifier(config.dataset, data_dir)  # loaded once; not part of a cell's cost
    eval_config = EvalConfig(n_samples=n_samples, inception=False, nll_k=nll_k, nll_size=nll_size)
    start = time.perf_counter()
    metrics = evaluate_cell(trained, eval_config, data_dir).metrics
    return {
        "cell": "article-conv concat, latent 128, 28x28 Fashion-MNIST",
        "n_samples": n_samples,
        "recon_images": len(trained.bundle.test),
        "nll": f"{eval_config.nll_size or 'all'} images x k={eval_config.nll_k}, "
        f"and x {trained.bundle.num_classes} classes for the label group",
        "nll_iw": metrics["nll_iw"],
        "nll_iw_se": metrics["nll_iw_se"],
        "nll_iw_mc_se": metrics["nll_iw_mc_se"],
        "seconds_total": round(time.perf_counter() - start, 2),
        "seconds_by_group": metrics["eval_seconds"],
    }

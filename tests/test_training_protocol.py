"""Cells trained the way the literature trains: a validation split, a learning-rate schedule, early
stopping and best-epoch selection, each checked against a hand computation or a planted curve."""

import hashlib
import math

import pytest
import torch

from benchmark.config import CellConfig
from benchmark.training import train_cell
from benchmark.training.schedules import SCHEDULES, LearningRate
from benchmark.training.selection import CONVERGENCE_TOLERANCE, training_summary
from benchmark.training.trainer import load_cell_data

TINY = {"dataset": "synthetic", "backbone": "mlp", "hidden": [32], "latent_dim": 4, "train_size": 400}
PYTHAE_GAMMA = 10 ** (-1 / 5)


def lrs_over_epochs(config: CellConfig, epochs: int, val_losses=None) -> list[float]:
    """The learning rate each 1-based epoch trains with, stepping the schedule as the trainer does."""
    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=config.lr)
    schedule = LearningRate(optimizer, config)
    lrs = []
    for epoch in range(epochs):
        lrs.append(schedule.current)
        schedule.step(None if val_losses is None else val_losses[epoch])
    return lrs


def test_pythaes_step_schedule_equals_the_hand_computation():
    config = CellConfig(
        **TINY, lr=1e-4, schedule="multistep", milestones=(200, 350, 500, 750, 1000), gamma=PYTHAE_GAMMA
    )
    lrs = lrs_over_epochs(config, 520)

    def by_hand(epoch: int) -> float:  # epoch e trains at lr * gamma^(milestones passed before it)
        return 1e-4 * PYTHAE_GAMMA ** sum(m < epoch for m in (200, 350, 500, 750, 1000))

    for epoch in (1, 200, 201, 350, 351, 500, 501, 520):
        assert lrs[epoch - 1] == pytest.approx(by_hand(epoch), rel=1e-12), epoch
    assert lrs[199] == 1e-4 and lrs[200] == pytest.approx(6.3096e-5, rel=1e-4)  # the 6.31e-5 from 201
    assert lrs[350] == pytest.approx(3.9811e-5, rel=1e-4)


def test_cosine_and_plateau_schedules_by_hand():
    cosine = CellConfig(**TINY, lr=1e-3, epochs=10, schedule="cosine", lr_min=1e-5)
    for epoch, lr in enumerate(lrs_over_epochs(cosine, 10)):
        assert lr == pytest.approx(1e-5 + (1e-3 - 1e-5) * (1 + math.cos(math.pi * epoch / 10)) / 2, rel=1e-9)
    plateau = CellConfig(**TINY, lr=1e-3, val_size=100, schedule="plateau", gamma=0.5, plateau_patience=2)
    # torch's rule: reduce once more than plateau_patience epochs in a row did not improve: best at epoch 2,
    # epochs 3-5 stale -> halved from epoch 6; best again at 6, epochs 7-9 stale -> halved from epoch 10
    losses = [5.0, 4.0, 4.0, 4.0, 4.0, 3.0, 3.0, 3.0, 3.0, 3.0]
    lrs = lrs_over_epochs(plateau, len(losses), losses)
    assert lrs == [1e-3] * 5 + [5e-4] * 4 + [2.5e-4]


def test_the_trainer_logs_the_scheduled_learning_rate(tmp_path):
    config = CellConfig(**TINY, epochs=3, schedule="multistep", milestones=(1, 2), gamma=0.5)
    trained = train_cell(config, device="cpu")
    assert [e["lr"] for e in trained.log] == [1e-3, 5e-4, 2.5e-4]


def image_hashes(images: torch.Tensor) -> list[str]:
    return [hashlib.sha256(image.numpy().tobytes()).hexdigest() for image in images]


def test_the_validation_split_is_disjoint_from_training_and_test_and_the_same_for_every_seed():
    full = load_cell_data("synthetic", 28, None, 0)
    bundles = [load_cell_data("synthetic", 28, 500, seed, val_size=300) for seed in (0, 1, 2)]
    validation = [image_hashes(b.validation.images) for b in bundles]
    assert validation[0] == validation[1] == validation[2]  # the same images for every seed
    assert validation[0] == image_hashes(full.train.images[-300:])  # the train split's last 300
    test = set(image_hashes(full.test.images))
    for bundle in bundles:
        train = set(image_hashes(bundle.train.images))
        assert len(train) == 500 and not train & set(validation[0]) and not set(validation[0]) & test
    assert image_hashes(bundles[0].train.images) != image_hashes(bundles[1].train.images)  # seeded subsets


def planted_validation(losses: list[float]):
    """A stand-in for the trainer's validation pass that returns a planted curve, one value per call."""
    remaining = iter(losses)

    def validation_terms(model, images, conditions, config):
        return {"val_loss": next(remaining), "val_recon": 0.0, "val_kl": 0.0}

    return validation_terms


def test_early_stopping_stops_where_the_validation_curve_says(monkeypatch):
    curve = [10.0, 9.0, 8.0, 8.4, 7.9, 8.3, 8.2, 7.0, 6.0, 5.0]
    monkeypatch.setattr("benchmark.training.trainer.validation_terms", planted_validation(curve))
    config = CellConfig(**TINY, epochs=10, val_size=100, patience=3, min_delta=0.2)
    trained = train_cell(config, device="cpu")
    # 7.9 at epoch 5 improves on 8.0 by less than min_delta 0.2: epochs 4-6 are stale, stop after 6
    assert [e["val_loss"] for e in trained.log] == curve[:6]
    assert trained.summary["stopped"] == "early_stopping" and trained.summary["best_epoch"] == 3
    assert trained.summary["epochs_run"] == 6 and trained.summary["converged"]


def test_best_val_measures_the_best_epochs_checkpoint(monkeypatch):
    curve = [10.0, 8.0, 9.0, 9.5]  # best at epoch 2
    monkeypatch.setattr("benchmark.training.trainer.validation_terms", planted_validation(curve))
    best = train_cell(CellConfig(**TINY, epochs=4, val_size=100, select="best_val"), device="cpu")
    assert best.summary["selected_epoch"] == 2 and best.summary["stopped"] == "epoch_budget"
    monkeypatch.setattr("benchmark.training.trainer.validation_terms", planted_validation(curve))
    two = train_cell(CellConfig(**TINY, epochs=2, val_size=100), device="cpu")  # the same cell, stopped at 2
    monkeypatch.setattr("benchmark.training.trainer.validation_terms", planted_validation(curve))
    last = train_cell(CellConfig(**TINY, epochs=4, val_size=100), device="cpu")
    for name, tensor in two.model.state_dict().items():
        assert torch.equal(best.model.state_dict()[name], tensor), name
    assert any(not torch.equal(last.model.state_dict()[n], t) for n, t in two.model.state_dict().items())


def test_the_validation_pass_measures_the_cells_loss_on_held_out_images():
    trained = train_cell(CellConfig(**TINY, epochs=2, val_size=200, recon_loss="bce"), device="cpu")
    first, second = trained.log
    assert second["val_loss"] < first["val_loss"]  # it learns
    # beta 1: the loss is recon + kl, up to the float32 rounding of each batch's total (~1e-7 relative)
    assert first["val_loss"] == pytest.approx(first["val_recon"] + first["val_kl"], rel=1e-6)
    assert "val_neg_elbo" not in first  # grey pixels, Bernoulli decoder: not a likelihood
    binary = train_cell(CellConfig(**TINY, epochs=1, val_size=200, binarize="fixed"), device="cpu")
    assert binary.log[0]["val_neg_elbo"] == pytest.approx(binary.log[0]["val_loss"], rel=1e-6)


def test_convergence_is_read_from_the_last_epochs():
    config = CellConfig(**TINY, epochs=30, val_size=100)
    flat = [{"val_loss": 100.0 - 10 * (e < 20) * (20 - e) / 20} for e in range(30)]  # flat from epoch 21
    falling = [{"val_loss": 100.0 - e} for e in range(30)]
    assert training_summary(flat, config)["converged"]
    summary = training_summary(falling, config)
    assert not summary["converged"] and summary["window"] == 3
    assert summary["improvement_in_window"] == pytest.approx(3 / 71)
    assert summary["improvement_in_window"] > CONVERGENCE_TOLERANCE
    assert training_summary([{"loss": 5.0}] * 2, CellConfig(**TINY))["measured_on"] == "training"


def test_schedules_are_one_registry_and_ids_ignore_what_a_schedule_does_not_read():
    assert SCHEDULES.names() == ["constant", "multistep", "cosine", "plateau"]
    a = CellConfig(**TINY, schedule="cosine", lr_min=1e-5, milestones=(3,))
    b = CellConfig(**TINY, schedule="cosine", lr_min=1e-5)
    assert a.canonical() == b.canonical()
    assert "val_size" not in CellConfig(**TINY).identity()  # cells trained before keep their ids


def test_a_report_says_whether_its_cells_converged(tmp_path, cli):
    grid = tmp_path / "conv.yaml"
    grid.write_text(
        "name: conv\nbase: {dataset: synthetic, backbone: mlp, hidden: [32], latent_dim: 4, train_size: 400,\n"
        "  epochs: 3, val_size: 100}\naxes: {conditioning: [none, concat]}\nseeds: [0, 1]\n"
        "eval: {recon_size: 100, n_samples: 200, nll_size: 20, nll_k: 2}\n"
    )
    assert cli("run", "--grid", grid, "--results", tmp_path / "r", "--device", "cpu").returncode == 0
    assert cli("report", "--grid", grid, "--results", tmp_path / "r", "--out", tmp_path / "out").returncode == 0
    text = (tmp_path / "out" / "conv.md").read_text()
    # three epochs are too few to tell (the window is three epochs): not converged, and every finding says so
    assert "**Training**: 0 of 4 cells converged" in text
    results = text.split("## Results")[1].split("\n## ")[0]
    assert "| n | converged | epoch measured |" in results and results.count("| 2 | 0/2 | 3 |") == 2
    findings = text.split("## Findings")[1].split("\n## ")[0]
    lines = [line for line in findings.splitlines() if line.startswith("- ")]
    assert lines and all("Not converged: 4 of 4 cells were still improving" in line for line in lines)
    assert "the validation split's loss" in text


def test_the_exported_binarisation_is_the_cells_own_images(tmp_path, cli):
    import numpy as np

    result = cli("data", "export-amat", "--dataset", "synthetic", "--val-size", "1000", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    bundle = load_cell_data("synthetic", 28, None, 0, binarize="fixed", val_size=1000)
    for name, split in (("train", bundle.train), ("valid", bundle.validation), ("test", bundle.test)):
        pixels = np.loadtxt(tmp_path / f"binarized_synthetic_{name}.amat", dtype=np.uint8)
        assert pixels.shape == (len(split), 784)
        assert np.array_equal(pixels * 255, split.images.flatten(1).numpy()), name

import numpy as np
import pytest
import torch
from torch import nn

from benchmark.config import CellConfig
from benchmark.data import load_dataset
from benchmark.errors import BenchError
from benchmark.metrics import likelihood, reconstruction
from benchmark.metrics.classifier import conditional_accuracy, domain_classifier
from benchmark.metrics.evaluate import evaluate_cell
from benchmark.metrics.frechet import GaussianStats, frechet_distance, kernel_distance
from benchmark.metrics.protocol import EvalConfig
from benchmark.metrics.registry import metric_specs
from benchmark.training import train_cell


def test_identical_images_have_zero_error_and_ssim_one():
    x = torch.rand(5, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    assert reconstruction.mse_pixel(x, x) == 0
    assert reconstruction.sse_image(x, x) == 0
    assert reconstruction.ssim(x, x) == pytest.approx(1.0)
    rgb = torch.rand(2, 3, 16, 16)
    assert reconstruction.ssim(rgb, rgb) == pytest.approx(1.0)


def test_errors_of_known_pairs_by_hand():
    x = torch.zeros(2, 1, 2, 2)
    x_hat = torch.full((2, 1, 2, 2), 0.5)
    x_hat[1] = 0.0  # second image perfect
    # image 1: 4 pixels * 0.25 = 1.0; image 2: 0. Per image mean 0.5; per pixel 4 * 0.25 / 8
    assert reconstruction.sse_image(x, x_hat) == pytest.approx(0.5)
    assert reconstruction.mse_pixel(x, x_hat) == pytest.approx(0.125)


def test_ssim_of_constant_images_matches_the_formula():
    # Constant images: variances and covariance are 0, so SSIM = (2 p q + C1) / (p^2 + q^2 + C1), C1 = 0.01^2.
    p, q, c1 = 0.2, 0.4, 0.01**2
    a, b = torch.full((1, 1, 9, 9), p), torch.full((1, 1, 9, 9), q)
    assert reconstruction.ssim(a, b) == pytest.approx((2 * p * q + c1) / (p * p + q * q + c1), rel=1e-6)
    rgb_a, rgb_b = a.repeat(1, 3, 1, 1), b.repeat(1, 3, 1, 1)
    assert reconstruction.ssim(rgb_a, rgb_b) == pytest.approx(reconstruction.ssim(a, b))


def test_frechet_of_one_gaussian_is_near_zero():
    rng = np.random.default_rng(0)
    cov = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]])
    a = rng.multivariate_normal([1, 2, 3], cov, size=200_000)
    b = rng.multivariate_normal([1, 2, 3], cov, size=200_000)
    assert frechet_distance(GaussianStats.of(a), GaussianStats.of(b)) < 1e-3


def test_frechet_matches_the_closed_form():
    # ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2); with diagonal S the root is elementwise.
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    got = frechet_distance(GaussianStats(mu1, np.diag(s1)), GaussianStats(mu2, np.diag(s2)))
    assert got == pytest.approx(expected, rel=1e-6)
    rotation = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]  # full covariances
    full1, full2 = rotation @ np.diag(s1) @ rotation.T, rotation @ np.diag(s2) @ rotation.T
    got_full = frechet_distance(GaussianStats(mu1, full1), GaussianStats(mu2, full2))
    assert got_full == pytest.approx(expected, rel=1e-6)


def test_kid_is_near_zero_for_one_distribution_and_positive_otherwise():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(1000, 8)), rng.normal(size=(1000, 8))
    assert abs(kernel_distance(a, b)) < 0.01
    assert kernel_distance(a, b + 1.0) > 0.1


@pytest.fixture(scope="module")
def fashion(shared_data):
    return load_dataset("fashion_mnist", 28, shared_data)


@pytest.fixture(scope="module")
def fashion_classifier(shared_data):
    return domain_classifier("fashion_mnist", shared_data)


def test_classifier_accuracies_reach_their_floors(shared_data, fashion_classifier):
    mnist = domain_classifier("mnist", shared_data)
    print(
        f"domain classifier test accuracy: fashion_mnist {fashion_classifier.test_accuracy:.4f}, "
        f"mnist {mnist.test_accuracy:.4f}"
    )
    assert fashion_classifier.test_accuracy >= 0.90
    assert mnist.test_accuracy >= 0.98


def test_cond_acc_of_real_images_equals_classifier_accuracy(fashion, fashion_classifier):
    _, predicted = fashion_classifier.run(fashion.test.images)
    accuracy, per_class = conditional_accuracy(predicted, fashion.test.labels, fashion.class_names)
    assert accuracy == pytest.approx(fashion_classifier.test_accuracy, abs=1e-12)
    assert set(per_class) == set(fashion.class_names)
    assert min(per_class.values()) > 0.5


def test_fid_domain_test_vs_itself_train_and_mnist(shared_data, fashion, fashion_classifier):
    mnist = load_dataset("mnist", 28, shared_data)
    test = GaussianStats.of(fashion_classifier.run(fashion.test.images)[0].numpy())
    train = GaussianStats.of(fashion_classifier.run(fashion.train.images[:10000])[0].numpy())
    digits = GaussianStats.of(fashion_classifier.run(mnist.test.images)[0].numpy())
    self_fid, train_fid, mnist_fid = (frechet_distance(test, s) for s in (test, train, digits))
    print(f"fid_domain fashion test vs itself {self_fid:.4f}, vs train {train_fid:.3f}, vs mnist {mnist_fid:.1f}")
    assert abs(self_fid) < 1e-6
    assert train_fid < 5
    assert mnist_fid > 50 * train_fid


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic", 28)


@pytest.fixture(scope="module")
def trained(synthetic):
    config = CellConfig(dataset="synthetic", backbone="mlp", hidden=(128,), latent_dim=8, train_size=3000, epochs=2)
    bundle = synthetic.with_train(synthetic.train.seeded_subset(3000, 0))
    return train_cell(config, device="cpu", bundle=bundle)


def test_shipped_classifiers_are_hash_checked_and_named_by_their_hash(monkeypatch, tmp_path):
    from benchmark.metrics import classifier as module

    fitted = domain_classifier("synthetic")
    manifest = module._instruments()["synthetic"]
    assert fitted.key == f"synthetic-{manifest['sha256'][:12]}"
    tampered = tmp_path / manifest["file"]
    tampered.write_bytes((module.INSTRUMENT_DIR / manifest["file"]).read_bytes()[:-1] + b"x")
    monkeypatch.setattr(module, "INSTRUMENT_DIR", tmp_path)
    with pytest.raises(BenchError, match="missing or altered"):
        domain_classifier("synthetic")


def test_iw_nll_below_elbo_and_falls_with_k(trained, synthetic):
    x, c = synthetic.test.images[:200].float() / 255, synthetic.test.labels[:200]
    nll = {}
    for k in (1, 10, 100):
        weights = likelihood.log_weights(trained.model, x, c, k, torch.Generator().manual_seed(0))
        nll[k] = likelihood.iw_nll(weights).mean().item()
        assert nll[k] <= likelihood.negative_elbo(weights).mean().item() + 1e-9
    assert nll[1] >= nll[10] >= nll[100]
    health = likelihood.latent_health(trained.model, x, c)
    assert len(health["kl_per_dim"]) == 8 and 0 <= health["active_units"] <= 8


class StandInInception(nn.Module):
    """Shaped like clean-fid's TorchScript Inception: a `layers` module giving 2048 features."""

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(48, 2048))

    def forward(self, x):
        return self.layers(x)


def test_inception_path_end_to_end_with_a_stand_in_network(trained, tmp_path):
    torch.manual_seed(0)
    weights = tmp_path / "inception-2015-12-05.pt"
    torch.jit.script(StandInInception()).save(str(weights))
    eval_config = EvalConfig(recon_size=100, n_samples=200, nll_size=20, nll_k=2, inception_weights=str(weights))
    metrics = evaluate_cell(trained, eval_config).metrics
    assert metrics["fid_inception"] > 0 and np.isfinite(metrics["fid_inception"])
    assert np.isfinite(metrics["kid_inception"])
    assert "fid_inception" not in metrics["protocol"].get("unavailable", {})


def test_missing_inception_weights_are_reported_not_dropped(trained, tmp_path):
    eval_config = EvalConfig(
        recon_size=100,
        n_samples=200,
        nll_size=20,
        nll_k=2,
        inception_weights=str(tmp_path / "inception-2015-12-05.pt"),
    )
    metrics = evaluate_cell(trained, eval_config).metrics
    assert metrics["fid_inception"] is None
    assert "Inception weights not found" in metrics["protocol"]["unavailable"]["fid_inception"]
    for name in (
        "mse_pixel",
        "sse_image",
        "ssim",
        "fid_domain",
        "kid_domain",
        "cond_acc",
        "nll_iw",
        "active_units",
    ):
        assert name in metrics and name in metric_specs()
    assert metrics["protocol"]["eval"]["n_samples"] == 200
    assert metrics["protocol"]["domain_classifier"]["test_accuracy"] >= 0.9

"""model: ae, the plain (conditional) autoencoder: a deterministic code, no KL, and two samplers."""

import numpy as np
import pytest
import torch

from benchmark.config import CellConfig
from benchmark.data import load_dataset
from benchmark.metrics.evaluate import evaluate_cell
from benchmark.metrics.protocol import EvalConfig
from benchmark.models.condition_source import ConditionSource
from benchmark.models.cost import parameter_count
from benchmark.models.cvae import build_model
from benchmark.models.loss import cvae_loss
from benchmark.training import train_cell

LABELS = ConditionSource(num_classes=10)


def small(model: str, **fields) -> CellConfig:
    return CellConfig(dataset="synthetic", backbone="mlp", hidden=(32,), latent_dim=4, model=model, **fields)


def test_the_autoencoder_has_no_kl_and_no_variance_head():
    torch.manual_seed(0)
    ae, cvae = build_model(small("ae"), LABELS), build_model(small("cvae"), LABELS)
    head_in = cvae.logvar_head.in_features
    assert parameter_count(ae) == parameter_count(cvae) - (head_in * 4 + 4)
    x, c = torch.rand(6, 1, 28, 28), torch.randint(0, 10, (6,))
    logits, kl = ae(x, c, eps=torch.randn(6, 4))
    assert torch.equal(kl, torch.zeros(6, 4))
    code, _ = ae.encode(x, c)
    assert torch.equal(logits, ae.decode_logits(code, c))  # z is the code itself: no noise enters
    assert cvae_loss(logits, x, kl, "bce", 4.0).total == cvae_loss(logits, x, kl, "bce", 0.0).total


def test_the_code_density_is_each_class_s_mean_and_covariance():
    torch.manual_seed(0)
    ae = build_model(small("ae"), LABELS).eval()
    images = torch.randint(0, 256, (300, 1, 28, 28), dtype=torch.uint8)
    labels = torch.arange(300) % 10
    ae.after_training(images, labels, small("ae", batch_size=64), None)
    codes = ae.encode(images.float() / 255, labels)[0].detach().double().numpy()
    for k in (0, 7):
        own = codes[labels.numpy() == k]
        covariance = np.cov(own.T) + ae.FIT_RIDGE * np.eye(4)
        np.testing.assert_allclose(ae.code_mean[k].numpy(), own.mean(0), rtol=1e-5, atol=1e-6)
        fitted = (ae.code_scale_tril[k] @ ae.code_scale_tril[k].T).double().numpy()
        np.testing.assert_allclose(fitted, covariance, rtol=1e-4, atol=1e-7)


def test_the_two_samplers_decode_what_they_say():
    torch.manual_seed(0)
    ae = build_model(small("ae"), LABELS).eval()
    c = torch.tensor([3, 3, 5])
    ae.code_mean[3], ae.code_mean[5] = torch.full((4,), 2.0), torch.full((4,), -1.0)
    ae.code_scale_tril.zero_()  # a degenerate fit: every sample of a class is its mean's decoding
    expected = torch.sigmoid(ae.decode_logits(ae.code_mean[c], c))
    assert torch.allclose(ae.sample(c, torch.Generator().manual_seed(0)), expected)
    unit = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(
        ae.sample_unit_codes(c, torch.Generator().manual_seed(1)), torch.sigmoid(ae.decode_logits(unit, c))
    )


@pytest.fixture(scope="module")
def trained_autoencoder():
    synthetic = load_dataset("synthetic", 28)
    config = CellConfig(
        dataset="synthetic", model="ae", backbone="mlp", hidden=(128,), latent_dim=8, train_size=3000, epochs=2
    )
    return train_cell(config, device="cpu", bundle=synthetic.with_train(synthetic.train.seeded_subset(3000, 0)))


def test_a_trained_autoencoder_is_measured_with_both_samplers_and_no_likelihood(trained_autoencoder):
    ae = trained_autoencoder.model
    assert not torch.equal(ae.code_mean, torch.zeros_like(ae.code_mean))  # fitted when training ended
    settings = EvalConfig(recon_size=500, n_samples=1000, nll_size=50, nll_k=5, inception=False)
    metrics = evaluate_cell(trained_autoencoder, settings).metrics
    unavailable = metrics["protocol"]["unavailable"]
    assert metrics["nll_iw"] is None and "no density over z" in unavailable["nll_iw"]
    assert metrics["label_information"] is None
    assert metrics["kl_per_dim"] is None and metrics["active_units"] is not None  # no KL; codes still vary
    assert metrics["protocol"]["sampler"] == ae.sampler
    # the classes' own code Gaussians generate their class; decoded N(0, I) codes are measured beside them
    assert metrics["cond_acc"] > 0.5, metrics["cond_acc"]
    assert metrics["cond_acc_unit_codes"] is not None and metrics["fid_domain_unit_codes"] is not None
    print(
        f"ae: cond_acc {metrics['cond_acc']:.3f} (fitted codes) vs {metrics['cond_acc_unit_codes']:.3f} (N(0, I)); "
        f"fid_domain {metrics['fid_domain']:.1f} vs {metrics['fid_domain_unit_codes']:.1f}"
    )


def test_the_vae_family_reports_no_unit_code_metrics_of_its_own():
    synthetic = load_dataset("synthetic", 28)
    config = small("cvae", train_size=200, epochs=1)
    trained = train_cell(config, device="cpu", bundle=synthetic.with_train(synthetic.train.seeded_subset(200, 0)))
    settings = EvalConfig(recon_size=100, n_samples=200, nll_size=20, nll_k=2, inception=False)
    metrics = evaluate_cell(trained, settings, groups=["unit_codes"]).metrics
    assert metrics["fid_domain_unit_codes"] is None
    assert "see fid_domain" in metrics["protocol"]["unavailable"]["fid_domain_unit_codes"]

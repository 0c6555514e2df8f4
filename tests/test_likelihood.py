"""Likelihoods checked against quantities computed another way: numerical integration, exact toys."""

import math

import pytest
import torch
from scipy import integrate

from benchmark.config import CellConfig
from benchmark.data import load_dataset
from benchmark.data.binarize import binarized
from benchmark.metrics import likelihood
from benchmark.models.condition_source import ConditionSource
from benchmark.models.cvae import build_model
from benchmark.models.loss import cbernoulli_log_normalizer, decoder_mean, likelihood_case, reconstruction_per_image
from benchmark.models.prior import StandardPrior


@pytest.mark.parametrize("logit", [-40.0, -6.0, -0.7, -2e-3, -1e-4, 0.0, 3e-4, 1e-3, 0.9, 6.0, 25.0])
def test_continuous_bernoulli_normaliser_and_mean_match_numerical_integration(logit):
    lam, rest = 1 / (1 + math.exp(-logit)), 1 / (1 + math.exp(logit))  # 1 - lam, without cancellation
    density = lambda x: lam**x * rest ** (1 - x)  # noqa: E731 - the unnormalised density
    # break points near both ends, where the density concentrates for large |logit|
    options = {"epsabs": 1e-15, "epsrel": 1e-13, "points": [0.001, 0.01, 0.1, 0.9, 0.99, 0.999], "limit": 500}
    mass = integrate.quad(density, 0, 1, **options)[0]
    mean = integrate.quad(lambda x: x * density(x), 0, 1, **options)[0] / mass
    t = torch.tensor([logit], dtype=torch.float64)
    assert cbernoulli_log_normalizer(t).item() == pytest.approx(-math.log(mass), rel=1e-9, abs=1e-9)
    assert decoder_mean(t, "cbernoulli").item() == pytest.approx(mean, abs=1e-9)


def test_the_normaliser_has_no_jump_where_the_series_takes_over():
    edge = torch.tensor([1e-3 - 1e-9, 1e-3 + 1e-9], dtype=torch.float64)
    a, b = cbernoulli_log_normalizer(edge).tolist()
    assert abs(a - b) < 1e-12


@torch.no_grad()
def exact_log_px(model, x, c, recon_loss: str) -> torch.Tensor:
    """log p(x|c) = log of the integral of p(x|z,c) N(z; 0, 1) over a 1-d latent, by the trapezoid rule."""
    grid = torch.linspace(-9, 9, 6001)
    rows = []
    for z in grid.split(1000):
        logits = model.decode_logits(z[:, None].repeat_interleave(len(x), 0), c.repeat(len(z)))
        log_px = -reconstruction_per_image(logits, x.repeat(len(z), 1, 1, 1), recon_loss).view(len(z), len(x))
        rows.append(log_px.double() - 0.5 * z[:, None].double() ** 2 - 0.5 * math.log(2 * math.pi))
    values = torch.cat(rows)
    step = (grid[1] - grid[0]).item()
    weights = torch.full((len(grid), 1), math.log(step), dtype=torch.float64)
    weights[[0, -1]] += math.log(0.5)
    return torch.logsumexp(values + weights, 0)


@pytest.mark.parametrize("recon_loss", ["bce", "cbernoulli"])
def test_importance_sampling_matches_integration_on_a_grid(recon_loss):
    torch.manual_seed(0)
    config = CellConfig(dataset="synthetic", backbone="mlp", hidden=(16,), latent_dim=1, recon_loss=recon_loss)
    model = build_model(config, ConditionSource(num_classes=10)).eval()
    data = binarized(load_dataset("synthetic", 28), "fixed") if recon_loss == "bce" else load_dataset("synthetic", 28)
    x, c = data.test.images[:6].float() / 255, data.test.labels[:6]
    exact = exact_log_px(model, x, c, recon_loss)
    estimate = likelihood.importance_estimate(
        model, x, c, 5000, torch.Generator().manual_seed(1), recon_loss, chunk=500
    )
    mc_se = estimate.log_var.sqrt()
    assert (estimate.log_px - exact).abs().max() < 4 * mc_se.max() + 1e-3
    assert (estimate.mean_weight <= estimate.log_px + 1e-9).all()  # the ELBO never exceeds the IW bound


class Toy(torch.nn.Module):
    """A model whose decoder draws the pattern of the class it is given, with certainty (or ignores it)."""

    def __init__(self, patterns: torch.Tensor, uses_label: bool):
        super().__init__()
        self.patterns, self.uses_label = patterns, uses_label
        self.prior = StandardPrior(2)

    def encode(self, x, c):
        return torch.zeros(len(x), 2), torch.zeros(len(x), 2)

    def decode_logits(self, z, c):
        chosen = self.patterns[c] if self.uses_label else self.patterns[torch.zeros_like(c)]
        return (chosen * 2 - 1) * 30.0 + 0.01 * z.sum(1, keepdim=True).view(-1, 1, 1, 1)

    def target_mask(self, c):
        return None  # every pixel counts (a label condition)


@pytest.fixture
def toy_data():
    gen = torch.Generator().manual_seed(0)
    patterns = (torch.rand(10, 1, 28, 28, generator=gen) < 0.5).float()
    labels = torch.arange(40) % 10
    return patterns, patterns[labels], labels


CLASSES = tuple(f"class {i}" for i in range(10))


def per_class(model, x, k=50):
    return likelihood.log_px_per_class(model, x, 10, k, lambda: torch.Generator().manual_seed(3), "bce")


def test_label_information_is_ln_k_when_the_label_determines_the_image(toy_data):
    patterns, x, labels = toy_data
    result = likelihood.label_information(per_class(Toy(patterns, True), x), labels, CLASSES, 15)
    assert result["label_information"] == pytest.approx(math.log(10), abs=1e-6)
    assert result["label_information_bound"] == pytest.approx(math.log(10))
    assert result["generative_accuracy"] == 1.0
    assert result["generative_log_loss"] == pytest.approx(0.0, abs=1e-6)
    assert result["generative_ece"] == pytest.approx(0.0, abs=1e-6)  # certain and right: calibrated
    assert set(result["generative_accuracy_per_class"].values()) == {1.0}


def test_a_decoder_that_ignores_the_label_takes_no_information_and_classifies_at_chance(toy_data):
    patterns, x, labels = toy_data
    result = likelihood.label_information(per_class(Toy(patterns, False), x), labels, CLASSES, 15)
    assert result["label_information"] == 0.0  # common random numbers: exactly equal rows
    assert result["generative_accuracy"] == pytest.approx(0.1)


def test_label_information_of_a_trained_cell_lies_between_0_and_ln_k():
    """A one-dimensional latent cannot hold ten shapes: the decoder must take the shape from the label."""
    from benchmark.training import train_cell

    data = binarized(load_dataset("synthetic", 28), "fixed")
    config = CellConfig(
        dataset="synthetic",
        backbone="mlp",
        hidden=(64,),
        latent_dim=1,
        conditioning="concat_input",
        binarize="fixed",
        train_size=2000,
        epochs=3,
    )
    trained = train_cell(config, device="cpu", bundle=data.with_train(data.train.seeded_subset(2000, 0)))
    x, labels = data.test.images[:100].float() / 255, data.test.labels[:100]
    per_y = likelihood.log_px_per_class(trained.model, x, 10, 20, lambda: torch.Generator().manual_seed(0), "bce")
    result = likelihood.label_information(per_y, labels, CLASSES, 15)
    print(result)  # measured: information 0.82 nats of ln 10 = 2.30, generative accuracy 0.52
    assert 0.2 < result["label_information"] <= math.log(10)
    assert result["generative_accuracy"] > 0.3  # chance is 0.1


def test_likelihood_is_reported_only_where_it_is_a_density():
    assert likelihood_case(CellConfig(dataset="mnist", binarize="fixed"))[0]
    assert likelihood_case(CellConfig(dataset="mnist", recon_loss="cbernoulli"))[0]
    grey, reason = likelihood_case(CellConfig(dataset="mnist"))
    assert not grey and "not a normalised density" in reason
    assert not likelihood_case(CellConfig(dataset="mnist", recon_loss="mse"))[0]
    with pytest.raises(ValueError, match="binarize 'fixed' is for grey data sets with the Bernoulli decoder"):
        CellConfig(dataset="mnist", binarize="fixed", recon_loss="cbernoulli")


def test_fixed_binarisation_is_exact_and_the_same_for_every_cell():
    data = load_dataset("synthetic", 28)
    a, b = binarized(data, "fixed"), binarized(data, "fixed")
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.images, b.test.images)
    assert set(a.train.images.unique().tolist()) <= {0, 255}
    share = (a.train.images == 255).double().mean().item()
    assert share == pytest.approx(data.train.images.double().mean().item() / 255, abs=0.002)
    dynamic = binarized(data, "dynamic")
    assert torch.equal(dynamic.train.images, data.train.images)  # drawn in the trainer
    assert torch.equal(dynamic.test.images, a.test.images)  # measured on the same binary test split


class Collapsed(torch.nn.Module):
    """A posterior and a learned prior whose variances in dimension 0 underflow float32 (e^-125, e^-120), as
    a continuous-Bernoulli cell's can after training; the decoder ignores z."""

    def __init__(self):
        super().__init__()
        self.prior = lambda c: (
            torch.tensor([[0.3, 0.0]]).expand(len(c), 2),
            torch.tensor([[-120.0, 0.0]]).expand(len(c), 2),
        )

    def encode(self, x, c):
        return torch.tensor([[0.3, 0.0]]).expand(len(x), 2), torch.tensor([[-125.0, 0.0]]).expand(len(x), 2)

    def decode_logits(self, z, c):
        return torch.zeros(len(z), 1, 2, 2)

    def target_mask(self, c):
        return None


def test_importance_weights_stay_finite_where_the_variances_underflow_float32():
    """z = mu exactly there (sigma * eps rounds away), so (z - mu)^2 / sigma^2 was 0 / 0 = nan. By hand:
    w = log p(x|z) + log N(z0; 0.3, e^-120) - log N(z0; 0.3, e^-125) (dimension 1: prior = posterior, cancels)
      = -4 log 2 - 0.5 (log 2 pi - 120) + 0.5 (log 2 pi - 125 + eps0^2) = -4 log 2 + 0.5 (eps0^2 - 5)."""
    x = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]])
    weights = likelihood.log_weights(
        Collapsed(), x, torch.zeros(1, dtype=torch.long), 6, torch.Generator().manual_seed(2)
    )
    eps = torch.randn((6, 1, 2), generator=torch.Generator().manual_seed(2))
    expected = -4 * math.log(2) + 0.5 * (eps[:, 0, 0].double() ** 2 - 5)
    assert torch.isfinite(weights).all()
    torch.testing.assert_close(weights[:, 0], expected, rtol=1e-6, atol=1e-5)


def test_the_calibration_error_of_a_hand_made_classifier_equals_the_hand_value():
    """Six images, three classes, confidences 0.9, 0.9, 0.62, 0.62, 0.5, 0.45 (none on a bin edge of the 15
    bins of width 1/15). The 0.9s share a bin, one right: |0.5 - 0.9| = 0.4 each; the 0.62s share one, both
    right: |1 - 0.62| = 0.38 each; 0.5 is wrong: 0.5; 0.45 is right: 0.55.
    ECE = (2 * 0.4 + 2 * 0.38 + 0.5 + 0.55) / 6 = 2.61 / 6 = 0.435."""
    from benchmark.metrics.calibration import expected_calibration_error, reliability

    probabilities = torch.tensor(
        [[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.62, 0.28, 0.1], [0.28, 0.62, 0.1], [0.5, 0.3, 0.2], [0.3, 0.25, 0.45]]
    )
    labels = torch.tensor([0, 1, 0, 1, 1, 2])
    rows = reliability(probabilities, labels, 15)
    assert [row[2] for row in rows if row[2]] == [1, 1, 2, 2]
    assert expected_calibration_error(rows) == pytest.approx(0.435)


def test_a_tie_for_the_argmax_is_shared_in_the_reliability_bins_as_in_the_accuracy():
    """A classifier that ignores its input ties all four classes on every image: the argmax is right for a
    quarter of each image whatever the labels (not for every image of class 0), so its confidence 0.25
    matches its accuracy and its calibration error is 0, and generative_accuracy says the same."""
    from benchmark.metrics.calibration import expected_calibration_error, reliability

    labels = torch.tensor([0, 0, 0, 1, 2, 3])
    rows = reliability(torch.full((6, 4), 0.25), labels, 15)
    assert [row for row in rows if row[2]] == [[0.25, 0.25, 6]]
    assert expected_calibration_error(rows) == 0
    flat = likelihood.label_information(torch.zeros(4, 6, dtype=torch.float64), labels, "abcd", 15)
    assert flat["generative_accuracy"] == flat["generative_reliability"][3][1] == 0.25


def test_label_information_is_ln_k_minus_the_generative_classifiers_log_loss():
    """log p(x|y) chosen by hand for two images and two classes: p(y|x) = softmax, so the information is
    ln 2 + mean log p(y_true|x) and the log-loss its complement."""
    per_y = torch.tensor([[0.0, -3.0], [-1.0, 0.0]], dtype=torch.float64)  # (K, N)
    labels = torch.tensor([0, 0])
    result = likelihood.label_information(per_y, labels, ("a", "b"), 15)
    p_true = torch.softmax(per_y, 0)[0]
    assert result["generative_log_loss"] == pytest.approx(-p_true.log().mean().item())
    assert result["label_information"] == pytest.approx(math.log(2) + p_true.log().mean().item())
    assert result["generative_accuracy_per_class"] == {"a": 0.5}

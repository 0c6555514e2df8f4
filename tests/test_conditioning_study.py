"""The conditioning study's building blocks: the AdaIN and input-concatenation mechanisms, the learned
conditional prior, parameter matching."""

import itertools
import math
from pathlib import Path

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from benchmark.config import CellConfig
from benchmark.errors import BenchError
from benchmark.grid.matching import MATCH_TOLERANCE
from benchmark.grid.spec import build_grid
from benchmark.metrics import likelihood
from benchmark.models.condition_source import ConditionSource
from benchmark.models.conditioning import CONDITIONINGS
from benchmark.models.cost import parameter_count_of
from benchmark.models.cvae import build_model
from benchmark.models.prior import PRIORS, kl_diagonal_gaussians
from benchmark.training import train_cell

LABELS = ConditionSource(num_classes=10)


@pytest.mark.parametrize(
    ("backbone", "conditioning", "prior"),
    list(itertools.product(["mlp", "conv"], CONDITIONINGS.names(), PRIORS.names())),
)
def test_every_mechanism_and_prior_trains_and_samples_on_both_backbones(backbone, conditioning, prior):
    config = CellConfig(
        dataset="synthetic",
        backbone=backbone,
        conditioning=conditioning,
        prior=prior,
        hidden=(64, 32),
        base_channels=8,
        latent_dim=4,
        train_size=256,
        epochs=2,
    )
    trained = train_cell(config, device="cpu")
    first, last = trained.log[0]["loss"], trained.log[-1]["loss"]
    assert math.isfinite(last) and last < first, (first, last)
    samples = trained.model.sample(torch.arange(10), torch.Generator().manual_seed(0))
    assert samples.shape == (10, 1, 28, 28) and 0 <= samples.min() and samples.max() <= 1


def test_adain_normalises_before_modulating_and_film_does_not():
    """Scaling a site's activations by 3 changes nothing after AdaIN's normalisation; FiLM passes it on."""
    ctx_model = build_model(CellConfig(backbone="conv", conditioning="adain"), LABELS)
    film_model = build_model(CellConfig(backbone="conv", conditioning="film"), LABELS)
    h = torch.randn(4, 32, 14, 14)
    c = torch.tensor([0, 1, 2, 3])
    adain, film = ctx_model.conditioning, film_model.conditioning
    torch.testing.assert_close(
        adain.modulate("encoder", 0, 3 * h, c), adain.modulate("encoder", 0, h, c), atol=1e-4, rtol=0
    )
    torch.testing.assert_close(film.modulate("encoder", 0, 3 * h, c), 3 * film.modulate("encoder", 0, h, c))
    normalised = adain.modulate("encoder", 0, h, c)  # generators start at zero: plain instance norm
    assert (
        normalised.mean((2, 3)).abs().max() < 1e-5 and (normalised.var((2, 3), unbiased=False) - 1).abs().max() < 1e-3
    )
    mlp = build_model(CellConfig(backbone="mlp", conditioning="adain"), LABELS).conditioning
    features = mlp.modulate("encoder", 0, torch.randn(4, 512) * 5 + 2, c)  # layer norm over the features
    assert features.mean(1).abs().max() < 1e-5 and (features.var(1, unbiased=False) - 1).abs().max() < 1e-3


def test_concat_input_puts_the_one_hot_label_into_the_input_of_both_backbones():
    mlp = build_model(CellConfig(backbone="mlp", conditioning="concat_input"), LABELS)
    assert mlp.encoder.blocks.layers[0].in_features == 784 + 10
    conv = build_model(CellConfig(backbone="conv", conditioning="concat_input"), LABELS)
    assert conv.encoder.blocks.layers[0].in_channels == 1 + 10
    x = conv.conditioning.encoder_input(torch.zeros(2, 1, 28, 28), torch.tensor([3, 7]))
    assert x.shape == (2, 11, 28, 28)
    assert torch.equal(x[0, 1:, 5, 5], torch.nn.functional.one_hot(torch.tensor(3), 10).float())
    assert conv.decoder_input.in_features == 16 + 10  # and to z


def test_conditional_prior_kl_equals_a_hand_computation():
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(4.0)]])
    prior_mu, prior_logvar = torch.tensor([[0.5, 1.0]]), torch.tensor([[math.log(4.0), 0.0]])
    # 0.5 * (log s_p^2 - log s_q^2 + (s_q^2 + (m_q - m_p)^2) / s_p^2 - 1), by hand:
    by_hand = [0.5 * (math.log(4) + (1 + 0.25) / 4 - 1), 0.5 * (-math.log(4) + (4 + 1) / 1 - 1)]
    got = kl_diagonal_gaussians(mu, logvar, prior_mu, prior_logvar)
    assert got[0].tolist() == pytest.approx(by_hand, rel=1e-6)
    reference = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(prior_mu, (0.5 * prior_logvar).exp()))
    torch.testing.assert_close(got, reference)
    # the model takes it against the prior of the condition it is given
    model = build_model(CellConfig(backbone="mlp", conditioning="concat", prior="conditional", latent_dim=2), LABELS)
    _set_prior(model, means={4: [0.5, 1.0]}, logvars={4: [math.log(4.0), 0.0]})
    assert model.kl(mu, logvar, torch.tensor([4]))[0].tolist() == pytest.approx(by_hand, rel=1e-5)
    standard = build_model(CellConfig(backbone="mlp", latent_dim=2), LABELS)
    assert standard.kl(mu, logvar, torch.tensor([4]))[0].tolist() == pytest.approx([0.5, 0.5 * (4 - math.log(4) - 1)])


def _set_prior(model, means: dict[int, list[float]], logvars: dict[int, list[float]]):
    """Make the prior network output these (mu, logvar) for these classes: the class embedding is one-hot
    into the hidden layer (ReLU of 1 = 1), the output layer reads the class's unit."""
    embed, _, out = model.prior.net
    with torch.no_grad():
        embed.weight.zero_()
        out.weight.zero_()
        out.bias.zero_()
        for k in means:
            embed.weight[k, k] = 1.0
            out.weight[:, k] = torch.tensor(means[k] + logvars[k])


def test_samples_of_a_conditional_prior_cell_come_from_the_prior_of_the_condition_asked_for(monkeypatch):
    model = build_model(CellConfig(backbone="mlp", conditioning="concat", prior="conditional", latent_dim=2), LABELS)
    _set_prior(model, means={0: [5.0, -5.0], 1: [-5.0, 5.0]}, logvars={0: [math.log(0.01)] * 2, 1: [0.0, 0.0]})
    seen = []
    decode = model.decode_logits
    monkeypatch.setattr(model, "decode_logits", lambda z, c: seen.append(z) or decode(z, c))
    model.sample(torch.tensor([0] * 2000 + [1] * 2000), torch.Generator().manual_seed(0))
    z = seen[0]
    # class 0: N((5, -5), 0.1^2); class 1: N((-5, 5), 1); sampling from N(0, I) would give means near 0
    torch.testing.assert_close(z[:2000].mean(0), torch.tensor([5.0, -5.0]), atol=0.02, rtol=0)
    torch.testing.assert_close(z[:2000].std(0), torch.tensor([0.1, 0.1]), atol=0.01, rtol=0)
    torch.testing.assert_close(z[2000:].mean(0), torch.tensor([-5.0, 5.0]), atol=0.1, rtol=0)
    torch.testing.assert_close(z[2000:].std(0), torch.tensor([1.0, 1.0]), atol=0.05, rtol=0)


def test_the_likelihood_weights_use_the_conditional_prior():
    """w = log p(x|z,c) + log p(z|c) - log q(z|x,c), recomputed with torch.distributions from the same draws."""
    model = build_model(CellConfig(backbone="mlp", conditioning="concat", prior="conditional", latent_dim=2), LABELS)
    _set_prior(model, means={3: [1.5, -0.5]}, logvars={3: [0.3, -0.7]})
    model.eval()
    x, c = torch.rand(1, 1, 28, 28).round(), torch.tensor([3])
    weights = likelihood.log_weights(model, x, c, 8, torch.Generator().manual_seed(5))
    mu, logvar = model.encode(x, c)
    eps = torch.randn((8, 1, 2), generator=torch.Generator().manual_seed(5))
    z = mu + (0.5 * logvar).exp() * eps
    log_px = (
        -torch.nn.functional.binary_cross_entropy_with_logits(
            model.decode_logits(z.flatten(0, 1), c.repeat(8)), x.repeat(8, 1, 1, 1), reduction="none"
        )
        .flatten(1)
        .sum(1)
    )
    prior = Normal(torch.tensor([1.5, -0.5]), (0.5 * torch.tensor([0.3, -0.7])).exp())
    expected = (
        log_px + prior.log_prob(z).sum(-1).view(-1) - Normal(mu, (0.5 * logvar).exp()).log_prob(z).sum(-1).view(-1)
    )
    torch.testing.assert_close(weights.view(-1).float(), expected.detach(), atol=1e-3, rtol=1e-5)


def test_the_conditional_prior_alone_makes_conditioning_none_use_the_label():
    assert not build_model(CellConfig(conditioning="none"), LABELS).uses_condition
    assert build_model(CellConfig(conditioning="none", prior="conditional"), LABELS).uses_condition


def test_standard_prior_keeps_the_ids_cells_had_before_the_prior_axis():
    """Cell ids hash every field, except fields added later while at their default."""
    cell = build_grid({"name": "t", "base": {"dataset": "mnist"}}, "g.yaml").cells[0]
    assert cell.id == "8dba34bfe6c2"  # recorded before the prior and width_scale fields existed
    other = build_grid({"name": "t", "base": {"dataset": "mnist", "prior": "conditional"}}, "g.yaml").cells[0]
    assert other.id != cell.id


MECHANISMS = CONDITIONINGS.names()


@pytest.mark.parametrize("backbone", ["mlp", "conv"])
def test_match_params_brings_every_mechanism_within_2_percent(backbone):
    axes = {"conditioning": MECHANISMS, "latent_dim": [8, 32], "prior": ["standard", "conditional"]}
    plain = build_grid({"name": "t", "base": {"backbone": backbone}, "axes": axes}, "g.yaml")
    matched = build_grid({"name": "t", "base": {"backbone": backbone}, "axes": axes, "match_params": True}, "g.yaml")
    assert matched.spec.match_params
    for group in itertools.product([8, 32], ["standard", "conditional"]):
        counts = {
            c.config.conditioning: parameter_count_of(c.config)
            for c in matched.cells
            if (c.config.latent_dim, c.config.prior) == group
        }
        before = {
            c.config.conditioning: parameter_count_of(c.config)
            for c in plain.cells
            if (c.config.latent_dim, c.config.prior) == group
        }
        spread = (max(before.values()) - min(before.values())) / max(before.values())
        assert spread > MATCH_TOLERANCE, f"unmatched spread {spread:.3f}: nothing to match"
        target = max(before.values())
        assert all(abs(n - target) <= MATCH_TOLERANCE * target for n in counts.values()), (target, counts)
        largest = max(before, key=before.get)
        assert counts[largest] == target  # the largest is left as it is; the others are widened


def test_match_params_refuses_a_backbone_of_fixed_widths():
    from benchmark.errors import BenchError

    with pytest.raises(BenchError, match="article-conv.*fixed widths"):
        build_grid(
            {
                "name": "t",
                "base": {"backbone": "article-conv", "dataset": "mnist"},
                "axes": {"conditioning": ["concat", "additive"]},
                "match_params": True,
            },
            "g.yaml",
        )


def test_match_params_matches_the_model_family_with_the_vq_prior_counted():
    from benchmark.grid import load_grid

    grid = load_grid(Path(__file__).resolve().parents[1] / "ablations" / "model_family.yaml")
    counts = {
        (c.config.dataset, c.config.model, c.config.conditioning): parameter_count_of(c.config) for c in grid.cells
    }
    for dataset in ("fashion_mnist", "mnist"):
        own = {k: v for k, v in counts.items() if k[0] == dataset}
        target = own[(dataset, "vqvae", "none")]  # the largest: its codebook and code prior included
        assert own[(dataset, "vae", "none")] and own[(dataset, "ae", "concat")]  # the models hold their own modes
        assert all(abs(n - target) <= MATCH_TOLERANCE * target for n in own.values()), own
    vq = next(c.config for c in grid.cells if c.config.model == "vqvae")
    without_prior = parameter_count_of(vq) - sum(
        p.numel() for p in build_model(vq, ConditionSource(num_classes=10)).code_prior.parameters()
    )
    assert without_prior < 0.9 * parameter_count_of(vq)


def test_match_params_across_models_ignores_training_fields_and_refuses_a_silent_split():
    axes = {"model": ["ae", "vae", "cvae", "vqvae"]}
    base = {"backbone": "conv", "beta": 0.5, "kl_warmup_epochs": 3}  # no change of size: one group still
    grid = build_grid({"name": "t", "base": base, "axes": axes, "match_params": True}, "g.yaml")
    counts = [parameter_count_of(c.config) for c in grid.cells]
    assert (max(counts) - min(counts)) / max(counts) <= MATCH_TOLERANCE, counts
    for setting, message in (
        ({"prior": "conditional"}, "prior is standard for models ae, vae, vqvae but conditional for cvae"),
        ({"latent_dim": 32}, "latent_dim is 32 for models ae, cvae, vae but 16 for vqvae"),
    ):
        with pytest.raises(BenchError, match=message):
            build_grid({"name": "t", "base": {**base, **setting}, "axes": axes, "match_params": True}, "g.yaml")

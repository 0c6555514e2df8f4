"""model: vqvae, the VQ-VAE with a condition-driven autoregressive prior over its code grid."""

import math

import pytest
import torch

from benchmark.config import CellConfig
from benchmark.metrics.evaluate import evaluate_cell
from benchmark.metrics.protocol import EvalConfig
from benchmark.models.condition_source import ConditionSource
from benchmark.models.cvae import build_model
from benchmark.models.vqvae import CodePrior, VectorQuantizer, codebook_terms, codebook_usage, straight_through
from benchmark.training import train_cell

LABELS = ConditionSource(num_classes=10)


def vq_config(**fields) -> CellConfig:
    base = dict(dataset="synthetic", backbone="conv", base_channels=8, conditioning="none", model="vqvae")
    return CellConfig(**{**base, "codebook_size": 8, "code_dim": 3, **fields})


def test_the_straight_through_estimator_passes_the_decoder_gradient_unchanged():
    z_e = torch.randn(2, 3, 4, 4, requires_grad=True)
    z_q = torch.randn(2, 3, 4, 4)
    upstream = torch.randn(2, 3, 4, 4)
    out = straight_through(z_e, z_q)
    assert torch.equal(out, z_e + (z_q - z_e))  # the snapped values forward
    (out * upstream).sum().backward()
    assert torch.equal(z_e.grad, upstream)


def test_snapping_and_the_codebook_terms_against_a_hand_computation():
    quantizer = VectorQuantizer(3, 2, "loss")
    with torch.no_grad():
        quantizer.codebook.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [-2.0, 0.0]]))
    # one image, a 1 x 2 grid of 2-d vectors: (0.9, 0.8) is nearest (1, 1); (-1.2, 0.1) nearest (-2, 0)
    z_e = torch.tensor([[0.9, -1.2], [0.8, 0.1]]).view(1, 2, 1, 2).requires_grad_(True)
    indices = quantizer.indices(z_e)
    assert indices.tolist() == [[1, 2]]
    z_q = quantizer.codebook(indices).permute(0, 2, 1).view(1, 2, 1, 2)
    squared = (0.1**2 + 0.2**2) + (0.8**2 + 0.1**2)  # ||z_e - e||^2 over the grid: 0.05 + 0.65
    assert codebook_terms(z_e, z_q, 0.25, codebook_loss=True).item() == pytest.approx(squared * 1.25)
    assert codebook_terms(z_e, z_q, 0.25, codebook_loss=False).item() == pytest.approx(squared * 0.25)
    codebook_terms(z_e, z_q, 0.25, codebook_loss=True).sum().backward()
    # d/de ||sg[z_e] - e||^2 = 2 (e - z_e); the commitment term reaches z_e only: 0.25 * 2 (z_e - e)
    assert torch.allclose(quantizer.codebook.weight.grad[1], 2 * (torch.tensor([1.0, 1.0]) - torch.tensor([0.9, 0.8])))
    assert torch.allclose(z_e.grad[0, :, 0, 0], 0.5 * (torch.tensor([0.9, 0.8]) - torch.tensor([1.0, 1.0])))


def test_the_ema_update_against_a_hand_computation():
    quantizer = VectorQuantizer(2, 1, "ema")
    assert not quantizer.codebook.weight.requires_grad  # moved by the running means only
    with torch.no_grad():
        quantizer.codebook.weight.copy_(torch.tensor([[0.0], [5.0]]))
        quantizer.embed_sum.copy_(torch.tensor([[0.0], [5.0]]))
    z_e = torch.tensor([1.0, 2.0, 6.0]).view(1, 1, 1, 3)  # two outputs snap to vector 0, one to vector 1
    quantizer.ema_update(z_e, quantizer.indices(z_e))
    size = torch.tensor([0.99 + 0.01 * 2, 0.99 + 0.01 * 1])  # counts start at 1
    summed = torch.tensor([0.99 * 0.0 + 0.01 * 3.0, 0.99 * 5.0 + 0.01 * 6.0])
    total = size.sum()
    smoothed = (size + 1e-5) / (total + 2e-5) * total
    assert torch.allclose(quantizer.cluster_size, size)
    assert torch.allclose(quantizer.codebook.weight.squeeze(1), summed / smoothed)


def test_a_vector_unused_for_long_restarts_at_an_encoder_output():
    quantizer = VectorQuantizer(2, 1, "ema")
    with torch.no_grad():
        quantizer.codebook.weight.copy_(torch.tensor([[0.0], [50.0]]))
        quantizer.embed_sum.copy_(torch.tensor([[0.0], [50.0 * 1e-4]]))
        quantizer.cluster_size.copy_(torch.tensor([1.0, 1e-4]))  # vector 1: long unused
    z_e = torch.tensor([0.1, 0.2, 0.3]).view(1, 1, 1, 3)
    quantizer.ema_update(z_e, quantizer.indices(z_e))
    assert quantizer.codebook.weight[1].item() == pytest.approx(0.1)  # the batch's first output
    assert quantizer.cluster_size[1].item() == 1.0
    assert quantizer.codebook.weight[0].item() != 0.1  # the used vector moves by its running mean only


def test_the_code_prior_likelihood_of_a_toy_grid_is_the_product_of_its_conditionals():
    torch.manual_seed(0)
    prior = CodePrior(codebook_size=5, positions=3, source=LABELS, width=16).eval()
    codes, c = torch.tensor([[4, 0, 2]]), torch.tensor([7])
    by_hand = 0.0
    for i in range(3):  # each position's distribution from the condition and the codes before it only
        prefix = torch.cat([codes[:, :i], torch.zeros(1, 3 - i, dtype=torch.long)], 1)  # later codes: anything
        by_hand -= prior.logits(prefix, c)[0, i].log_softmax(-1)[codes[0, i]].item()
    assert prior.nll(codes, c).item() == pytest.approx(by_hand, rel=1e-5)
    # and it is a distribution: the probabilities of all 5^3 grids sum to 1
    grids = torch.cartesian_prod(*[torch.arange(5)] * 3)
    total = torch.logsumexp(-prior.nll(grids, c.expand(len(grids))), 0).exp().item()
    assert total == pytest.approx(1.0, rel=1e-4)


def test_codebook_usage_by_hand():
    perplexity, dead = codebook_usage(torch.tensor([0, 0, 1, 1]), 4)
    assert perplexity == pytest.approx(2.0) and dead == 0.5


@pytest.fixture(scope="module")
def trained_vqvae():
    # 375 Adam steps: enough for the EMA codebook (decay 0.99) to spread (measured: perplexity 8.3 of 32,
    # cond_acc 0.61; at 3 epochs of batch 128 it had not, perplexity 3 and cond_acc at chance)
    config = vq_config(codebook_size=32, code_dim=8, train_size=2000, val_size=500, epochs=6, patience=3, batch_size=32)
    return train_cell(config, device="cpu")


def test_a_class_conditioned_prior_generates_its_class_above_chance(trained_vqvae):
    stage = trained_vqvae.summary["second_stage"]
    losses = [e["val_loss"] for e in stage["log"]]  # its own validation loss, which training lowered
    assert min(losses) < losses[0] and stage["best_epoch"] == losses.index(min(losses)) + 1
    settings = EvalConfig(recon_size=500, n_samples=1000, nll_size=50, nll_k=5, inception=False)
    metrics = evaluate_cell(trained_vqvae, settings).metrics
    print(
        f"vqvae on synthetic: cond_acc {metrics['cond_acc']:.3f}, perplexity {metrics['codebook_perplexity']:.1f}, "
        f"dead {metrics['dead_codes']:.2f}, prior val nll {stage['log'][-1]['val_loss']:.2f}"
    )
    assert metrics["cond_acc"] > 0.3, metrics["cond_acc"]  # ten classes: chance is 0.1
    assert 1 <= metrics["codebook_perplexity"] <= 32 and 0 <= metrics["dead_codes"] < 1
    assert metrics["nll_iw"] is None and "one-hot posterior" in metrics["protocol"]["unavailable"]["nll_iw"]
    assert metrics["neg_elbo"] is None  # bce on grey pixels: not a density, so no bound either
    assert "kl" not in trained_vqvae.log[0] and trained_vqvae.log[0]["vq"] >= 0


def test_the_bound_of_a_uniform_prior_and_a_flat_decoder_is_p_log_k():
    """Decoder logits 0 (the continuous Bernoulli at lambda = 1/2 is uniform on [0, 1]: log-density 0 at every
    pixel) and a prior whose logits are 0 (every code 1/K): -log p(x|k) - log p(k|c) = 0 + P ln K exactly."""
    torch.manual_seed(0)
    model = build_model(vq_config(recon_loss="cbernoulli"), LABELS).eval()
    with torch.no_grad():
        for layer in (model.decoder.head, model.code_prior.out):
            layer.weight.zero_()
            layer.bias.zero_()
    x, c = torch.rand(3, 1, 28, 28), torch.tensor([1, 2, 3])
    positions = model.side * model.side
    assert torch.allclose(model.neg_elbo(x, c), torch.full((3,), positions * math.log(8)), atol=1e-4)


@pytest.mark.parametrize(
    ("source", "c"),
    [(ConditionSource(num_classes=10), torch.tensor([0, 9])), (ConditionSource(vector_dim=12), torch.randn(2, 12))],
    ids=["label or keyword", "text embedding"],
)
def test_the_prior_takes_every_condition_kind_as_its_first_token(source, c):
    torch.manual_seed(0)
    model = build_model(vq_config(), source).eval()
    x = torch.rand(2, 1, 28, 28)
    logits, vq = model(x, c)
    assert logits.shape == x.shape and vq.shape == (2, 1)
    assert model.sample(c, torch.Generator().manual_seed(0)).shape == x.shape
    codes = model.codes(x, c)
    other = c.flip(0)  # the prior's likelihood of the same codes moves with the condition
    assert not torch.allclose(model.code_prior.nll(codes, c), model.code_prior.nll(codes, other))

import pytest
import torch

from benchmark.config import CellConfig
from benchmark.data import load_dataset
from benchmark.training import CellFailed, train_cell
from benchmark.training.trainer import load_checkpoint, save_checkpoint

SMALL = dict(dataset="synthetic", backbone="conv", base_channels=8, latent_dim=8, train_size=512, epochs=2)


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic", 28)


@pytest.fixture(scope="module")
def fashion(shared_data):
    return load_dataset("fashion_mnist", 28, shared_data)


def _train(data, **overrides):
    config = CellConfig(**{**SMALL, **overrides})
    bundle = data.with_train(data.train.seeded_subset(config.train_size, config.seed))
    return train_cell(config, device="cpu", bundle=bundle)


def test_same_seed_is_bit_identical_other_seed_differs(synthetic):
    a, b, c = _train(synthetic, seed=1), _train(synthetic, seed=1), _train(synthetic, seed=2)
    assert [r["loss"] for r in a.log] == [r["loss"] for r in b.log]
    for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values()):
        assert torch.equal(p, q)
    assert a.log[-1]["loss"] != c.log[-1]["loss"]
    assert not torch.equal(a.model.mu_head.weight, c.model.mu_head.weight)


def test_log_has_every_loss_term_and_loss_falls(synthetic):
    result = _train(synthetic, epochs=3, train_size=2048)
    assert [r["epoch"] for r in result.log] == [1, 2, 3]
    for record in result.log:
        assert record["loss"] == pytest.approx(record["recon"] + record["beta"] * record["kl"], rel=1e-5)
        assert record["seconds"] > 0
    assert result.log[-1]["loss"] < result.log[0]["loss"]


def test_a_checkpoint_is_measured_again_in_the_layout_it_was_trained_in(synthetic, tmp_path):
    """Conv models are built channels_last; a checkpoint saved before that (contiguous weights) loads
    contiguous, so its metrics are measured again in the order of the sums it was first measured with
    (loaded channels_last, the reconstructions differ in the last bits)."""
    result = _train(synthetic, epochs=1)
    contiguous = result.model.to(memory_format=torch.contiguous_format)
    torch.save(contiguous.state_dict(), tmp_path / "old.pt")
    loaded = load_checkpoint(result.config, result.conditions, tmp_path / "old.pt")
    assert all(p.is_contiguous() for p in loaded.parameters())
    x, c = synthetic.test.images[:8].float() / 255, synthetic.test.labels[:8]
    assert torch.equal(loaded.reconstruct(x, c), contiguous.eval().reconstruct(x, c))


def test_non_finite_loss_fails_the_cell_with_a_reason(synthetic):
    with pytest.raises(CellFailed, match="non-finite loss at epoch 1"):
        _train(synthetic, lr=1e20, epochs=1)


def test_checkpoint_round_trip_with_weights_only(synthetic, tmp_path):
    result = _train(synthetic, epochs=1)
    save_checkpoint(result.model, tmp_path / "model.pt")
    loaded = load_checkpoint(result.config, result.conditions, tmp_path / "model.pt")
    x = synthetic.test.images[:8].float() / 255
    c = synthetic.test.labels[:8]
    assert torch.equal(loaded.reconstruct(x, c), result.model.reconstruct(x, c))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(loaded.sample(c, g1), result.model.sample(c, g2))


def test_article_conv_concat_one_epoch_on_real_fashion_mnist(fashion):
    """The write-up's setting: latent 128, batch 128, Adam 1e-3; a tutorial-style loop reaches ~284."""
    config = CellConfig(backbone="article-conv", conditioning="concat", latent_dim=128, epochs=1)
    result = train_cell(config, device="cpu", bundle=fashion)
    print(f"article-conv concat, 1 epoch: {result.log[0]['loss']:.2f} per image")
    assert result.log[0]["loss"] <= 290


def test_bf16_precision_trains_under_autocast_close_to_fp32(synthetic):
    fp32, bf16 = _train(synthetic, precision="fp32"), _train(synthetic, precision="bf16")
    assert bf16.log[-1]["loss"] != fp32.log[-1]["loss"]  # bf16 matmuls really ran
    for a, b in zip(fp32.log, bf16.log):
        assert b["loss"] == pytest.approx(a["loss"], rel=0.02)
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())  # autocast keeps fp32 weights


def test_learning_curve_is_the_evaluation_stage_after_each_epoch_and_changes_nothing(synthetic):
    from benchmark.metrics.evaluate import evaluate_cell
    from benchmark.metrics.protocol import EvalConfig

    plain = _train(synthetic, batchnorm=True)
    curved = _train(synthetic, batchnorm=True, curve_size=len(synthetic.test))
    assert [r["loss"] for r in curved.log] == [r["loss"] for r in plain.log]  # eval mode leaves BatchNorm alone
    for p, q in zip(plain.model.state_dict().values(), curved.model.state_dict().values()):
        assert torch.equal(p, q)
    assert all({"test_sse_image", "test_ssim", "test_ssim_gaussian"} <= set(r) for r in curved.log)
    assert "test_sse_image" not in plain.log[0]
    assert curved.log[0]["test_sse_image"] != curved.log[1]["test_sse_image"]
    final = evaluate_cell(curved, EvalConfig(recon_size=None, inception=False), groups=["reconstruction"])
    for name in ("sse_image", "ssim", "ssim_gaussian"):
        assert curved.log[-1][f"test_{name}"] == pytest.approx(final.metrics[name], rel=1e-12)

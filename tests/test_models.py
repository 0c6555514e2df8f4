import itertools

import pytest
import torch

from benchmark.config import CellConfig
from benchmark.models.backbones import BACKBONES
from benchmark.models.condition_source import ConditionSource
from benchmark.models.conditioning import CONDITIONINGS
from benchmark.models.cost import parameter_count
from benchmark.models.cvae import build_model
from benchmark.models.loss import cvae_loss, kl_weight
from benchmark.models.prior import kl_diagonal_gaussians


def conv(i, o, k):
    return i * o * k * k + o


def linear(i, o):
    return i * o + o


def bn(c):
    return 2 * c


# The published layer lists, counted by hand (weights + biases), 10 classes.
ARTICLE_CONV_ENCODER = conv(1, 32, 3) + conv(32, 64, 3) + conv(64, 128, 3)
ARTICLE_CONV_DECODER = conv(128, 64, 2) + conv(64, 32, 3) + conv(32, 1, 3)
PUBLISHED = {
    ("article-conv", "concat", 128): ARTICLE_CONV_ENCODER
    + 10 * 32  # label embedding of 32
    + 2 * linear(2048 + 32, 128)  # mu, log-variance
    + linear(128 + 32, 2048)
    + ARTICLE_CONV_DECODER,
    ("article-conv", "additive", 128): ARTICLE_CONV_ENCODER
    + 10 * 2048  # label embedded to the 2048 features
    + 10 * 128  # and to z
    + 2 * linear(2048, 128)
    + linear(128, 2048)
    + ARTICLE_CONV_DECODER,
    ("tutorial-mlp", "concat", 20): linear(784 + 10, 400)
    + 2 * linear(400, 20)
    + linear(20 + 10, 400)
    + linear(400, 784),
}


@pytest.mark.parametrize(("backbone", "conditioning", "latent"), list(PUBLISHED))
def test_preset_parameter_counts_match_published_layers(backbone, conditioning, latent):
    config = CellConfig(backbone=backbone, conditioning=conditioning, latent_dim=latent)
    count = parameter_count(build_model(config, ConditionSource(num_classes=10)))
    print(f"{backbone} {conditioning}: {count:,} parameters")
    assert count == PUBLISHED[(backbone, conditioning, latent)]


def test_article_coco_parameter_count():
    encoder = sum(conv(a, b, 4) + bn(b) for a, b in [(3, 32), (32, 64), (64, 128), (128, 256), (256, 512)])
    decoder = sum(conv(a, b, 4) + bn(b) for a, b in [(512, 256), (256, 128), (128, 64), (64, 32), (32, 16)])
    expected = (
        encoder
        + linear(512, 1024)  # the 512-d text embedding on the encoder side
        + 2 * linear(8192 + 1024, 128)
        + linear(128 + 512, 8192)  # raw condition concatenated to z
        + decoder
        + conv(16, 3, 3)
    )
    config = CellConfig(
        dataset="coco",
        condition="text",
        text_encoder="cvae-tiny-clip",
        backbone="article-coco",
        image_size=128,
        latent_dim=128,
    )
    count = parameter_count(build_model(config, ConditionSource(vector_dim=512)))
    print(f"article-coco concat: {count:,} parameters")
    assert count == expected


# From the registries: a newly registered backbone or conditioning mode is tested without editing this file.
GENERIC_BACKBONES = [name for name in BACKBONES.names() if BACKBONES[name].conditionings is None]
GENERIC = list(itertools.product(GENERIC_BACKBONES, CONDITIONINGS.names(), [28, 64], [1, 3]))


@pytest.mark.parametrize(("backbone", "conditioning", "size", "channels"), GENERIC)
def test_every_generic_combination_trains_a_step_and_samples(backbone, conditioning, size, channels):
    dataset, condition = ("coco", "text") if channels == 3 else ("mnist", "label")
    config = CellConfig(
        dataset=dataset,
        condition=condition,
        text_encoder="cvae-tiny-clip" if condition == "text" else None,
        backbone=backbone,
        conditioning=conditioning,
        image_size=size,
        latent_dim=8,
        hidden=(64, 32),
        base_channels=8,
        batchnorm=backbone == "conv",
    )
    source = ConditionSource(vector_dim=12) if channels == 3 else ConditionSource(num_classes=10)
    c = torch.randn(4, 12) if channels == 3 else torch.randint(0, 10, (4,))
    model = build_model(config, source)
    x = torch.rand(4, channels, size, size)
    logits, kl = model(x, c, generator=torch.Generator().manual_seed(0))
    assert logits.shape == x.shape and kl.shape == (4, 8)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    cvae_loss(logits, x, kl, "bce", 1.0).total.backward()
    optimizer.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    model.eval()
    assert model.sample(c, torch.Generator().manual_seed(1)).shape == x.shape
    recon = model.reconstruct(x, c)
    assert recon.shape == x.shape and recon.min() >= 0 and recon.max() <= 1


@pytest.mark.parametrize("size", [32, 128, 256])
def test_conv_depth_follows_image_size(size):
    config = CellConfig(
        dataset="coco",
        condition="text",
        text_encoder="cvae-tiny-clip",
        backbone="conv",
        image_size=size,
        base_channels=4,
    )
    model = build_model(config, ConditionSource(vector_dim=4))
    assert len(model.encoder.blocks.layers) == {32: 3, 128: 5, 256: 6}[size]
    assert model.sample(torch.randn(2, 4)).shape == (2, 3, size, size)


@pytest.mark.parametrize("conditioning", [name for name in CONDITIONINGS.names() if name != "none"])
def test_conditioning_changes_the_decoder_output(conditioning):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(CellConfig(conditioning=conditioning), ConditionSource(num_classes=10))
        for p in model.conditioning.parameters():  # FiLM starts at the identity; give every mode something to say
            torch.nn.init.normal_(p)
    out = model.decode_logits(torch.zeros(2, model.latent_dim), torch.tensor([0, 1]))
    assert not torch.allclose(out[0], out[1]), conditioning


def test_no_conditioning_ignores_the_condition():
    plain = build_model(CellConfig(conditioning="none"), ConditionSource(num_classes=10))
    out = plain.decode_logits(torch.zeros(2, plain.latent_dim), torch.tensor([0, 1]))
    assert torch.allclose(out[0], out[1])


def test_loss_terms_against_hand_computation():
    x = torch.tensor([[[[1.0, 0.0]]]])
    logits = torch.zeros_like(x)  # p = 0.5 everywhere: BCE = 2 * log 2
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 0.0]])  # KL = 0.5 * 1^2
    kl = kl_diagonal_gaussians(mu, logvar)
    terms = cvae_loss(logits, x, kl, "bce", beta=2.0)
    assert terms.recon.item() == pytest.approx(2 * torch.log(torch.tensor(2.0)).item())
    assert terms.kl.item() == pytest.approx(0.5)
    assert terms.total.item() == pytest.approx(terms.recon.item() + 1.0)
    mse = cvae_loss(logits, x, kl, "mse", beta=1.0)
    assert mse.recon.item() == pytest.approx(0.25 + 0.25)


def test_kl_warmup_is_linear():
    assert [kl_weight(2.0, e, 4) for e in range(5)] == [0.5, 1.0, 1.5, 2.0, 2.0]
    assert kl_weight(2.0, 0, 0) == 2.0


def test_presets_reject_unsupported_cells():
    with pytest.raises(ValueError, match="article-conv' does not support image_size 64"):
        CellConfig(backbone="article-conv", image_size=64)
    with pytest.raises(ValueError, match="does not support conditioning 'film'"):
        CellConfig(backbone="tutorial-mlp", conditioning="film")

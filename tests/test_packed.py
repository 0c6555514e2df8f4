import pytest
import torch

from benchmark.config import CellConfig
from benchmark.data import load_dataset
from benchmark.grid.spec import build_grid
from benchmark.runner.grid_run import RunOptions, pack_units
from benchmark.training import CellFailed, train_cell
from benchmark.training.packed import pack_key, train_packed

# Packed cells run the same arithmetic through batched (vmapped) kernels, so results differ from
# training alone only in float rounding (Adam is the same fused kernel in both): loss terms agree to 1e-4 relative,
# or 1e-3 nats per image for terms near zero, after two epochs.
LOSS_RTOL, LOSS_ATOL = 1e-4, 1e-3


@pytest.fixture(scope="module")
def fashion(shared_data):
    return load_dataset("fashion_mnist", 28, shared_data)


@pytest.mark.parametrize("backbone", ["article-conv", "mlp"])
def test_packed_cells_match_training_each_alone(fashion, backbone):
    base = dict(backbone=backbone, hidden=(64,), latent_dim=8, train_size=1024, epochs=2)
    configs = [
        CellConfig(**base, seed=0, beta=1.0, lr=1e-3),
        CellConfig(**base, seed=1, beta=2.0, lr=2e-3),
        CellConfig(**base, seed=2, beta=0.5, lr=5e-4),
    ]
    packed = train_packed(configs, device="cpu", full=fashion)
    for config, together in zip(configs, packed):
        alone = train_cell(
            config, device="cpu", bundle=fashion.with_train(fashion.train.seeded_subset(1024, config.seed))
        )
        for a, b in zip(alone.log, together.log):
            for term in ("loss", "recon", "kl"):
                assert b[term] == pytest.approx(a[term], rel=LOSS_RTOL, abs=LOSS_ATOL), (config.seed, term)
        x, c = fashion.test.images[:64].float() / 255, fashion.test.labels[:64]
        assert torch.allclose(together.model.reconstruct(x, c), alone.model.reconstruct(x, c), atol=1e-3)


def test_a_diverging_cell_fails_alone_in_its_pack(fashion):
    base = dict(backbone="mlp", hidden=(64,), latent_dim=4, train_size=512, epochs=1)
    outcomes = train_packed([CellConfig(**base, lr=1e-3), CellConfig(**base, lr=1e20)], device="cpu", full=fashion)
    assert not isinstance(outcomes[0], CellFailed) and outcomes[0].log[0]["loss"] < 1000
    assert isinstance(outcomes[1], CellFailed) and "non-finite loss at epoch 1" in str(outcomes[1])


def test_only_compatible_cells_are_packed():
    grid = build_grid(
        {
            "name": "p",
            "base": {"dataset": "mnist", "backbone": "conv"},
            "axes": {"latent_dim": [4, 8], "beta": [1.0, 2.0]},
            "seeds": [0, 1],
        },
        "p.yaml",
    )
    units = pack_units(list(grid.cells), RunOptions(pack=True))
    assert sorted(len(u) for u in units) == [4, 4]  # beta and seed pack; latent_dim does not
    assert all(len({c.config.latent_dim for c in u}) == 1 for u in units)
    assert [len(u) for u in pack_units(list(grid.cells), RunOptions(pack=False))] == [1] * 8
    assert len(pack_units(list(grid.cells), RunOptions(pack=True, max_pack=3))) == 4
    assert [len(u) for u in pack_units(list(grid.cells), RunOptions(device="cpu"))] == [1] * 8  # auto: CUDA only
    assert pack_key(CellConfig(backbone="conv", batchnorm=True)) is None

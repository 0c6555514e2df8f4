"""Image conditions: the tasks' masks, the target-only likelihood, the deterministic baseline, completions."""

import json

import pytest
import torch
from pydantic import ValidationError

from benchmark.conditions import prepare_conditions
from benchmark.conditions.image_tasks import quadrant_target, target_of, task_condition, visible_of
from benchmark.config import CellConfig
from benchmark.data import load_dataset
from benchmark.metrics.completion import completion_scores, diversity
from benchmark.metrics.likelihood import importance_estimate
from benchmark.models.conditioning import CONDITIONINGS
from benchmark.models.loss import reconstruction_per_image
from benchmark.training import train_cell
from benchmark.training.trainer import build_seeded_model

TINY = dict(dataset="synthetic", condition="image", train_size=256, epochs=1, hidden=(64,), base_channels=8)


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic", 28)


def images(n=4, size=28):
    return torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("visible, hidden", [(1, 588), (2, 392), (3, 196)])
def test_quadrant_masks_hide_the_stated_quadrants(visible, hidden):
    target = quadrant_target(visible, 28)[0, 0]
    assert target.shape == (28, 28) and int(target.sum()) == hidden
    assert not target[14:, :14].any()  # the bottom-left quadrant is always given (Pyro's layout)
    assert target[14:, 14:].all()  # the bottom-right one is always asked for
    assert bool(target[:14, :14].all()) == (visible == 1) and bool(target[:14, 14:].all()) == (visible < 3)


def test_inpaint_hides_one_box_per_image_at_seeded_places():
    x = images(50)
    condition = task_condition("inpaint:8", x, torch.Generator().manual_seed(0))
    assert condition.shape == (50, 2, 28, 28) and condition.dtype == torch.uint8
    target = target_of(condition)
    assert (target.flatten(1).sum(1) == 64).all()
    rows, cols = target[:, 0].any(2), target[:, 0].any(1)
    assert (rows.sum(1) == 8).all() and (cols.sum(1) == 8).all()  # one 8 x 8 square each
    assert len({tuple(r.nonzero()[0].tolist() + c.nonzero()[0].tolist()) for r, c in zip(rows, cols)}) > 10
    again = task_condition("inpaint:8", x, torch.Generator().manual_seed(0))
    assert torch.equal(condition, again)
    assert (visible_of(condition) * target == 0).all()  # hidden pixels are not shown
    shown = visible_of(condition) * (1 - target)
    assert torch.equal(shown, x.float() / 255 * (1 - target))


def test_superres_input_is_the_block_average_and_every_pixel_is_a_target():
    x = images(3)
    condition = task_condition("superres:4", x, torch.Generator())
    assert target_of(condition).sum() == 3 * 28 * 28
    visible = condition[:, :1].float()
    blocks = torch.nn.functional.avg_pool2d(x.float(), 4)
    assert torch.allclose(torch.nn.functional.avg_pool2d(visible, 4), blocks, atol=0.5)  # rounded to uint8
    assert (visible[..., ::4, ::4].repeat_interleave(4, -1).repeat_interleave(4, -2) == visible).all()


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"condition": "image"}, "condition 'image' needs task"),
        ({"condition": "label", "task": "quadrants:1"}, "task is only for condition 'image'"),
        ({"condition": "image", "task": "quadrant:1"}, "unknown image task 'quadrant'"),
        ({"condition": "image", "task": "quadrants:4"}, "1, 2 or 3 visible quadrants"),
        ({"condition": "image", "task": "superres:3"}, "a factor of 2 or 4"),
        ({"condition": "image", "task": "inpaint:28"}, "a box side from 1"),
        ({"condition": "image", "task": "inpaint"}, "the argument after inpaint:"),
        ({"condition": "label", "model": "gan"}, "unknown model 'gan'"),
    ],
)
def test_bad_tasks_are_refused_with_what_is_allowed(fields, message):
    with pytest.raises(ValidationError, match=message):
        CellConfig(dataset="synthetic", **fields)


def _model(synthetic, **fields):
    config = CellConfig(**{**TINY, "task": "quadrants:1", **fields}).canonical()
    conditions = prepare_conditions(config, synthetic)
    return config, build_seeded_model(config, conditions, torch.device("cpu")).eval(), conditions


def test_the_conditional_likelihood_counts_target_pixels_only(synthetic):
    config, model, conditions = _model(synthetic, model="deterministic", backbone="mlp")
    x = synthetic.test.images[:8].float() / 255
    c = conditions.test[:8]
    target = target_of(c)
    exact = -reconstruction_per_image(model.decode_logits(torch.zeros(8, config.latent_dim), c), x, "bce", target)
    estimate = importance_estimate(model, x, c, 5, torch.Generator().manual_seed(0)).log_px
    assert torch.allclose(estimate, exact.double(), rtol=1e-6)  # a model without latent: the estimate is exact
    changed = x * target + torch.rand(x.shape, generator=torch.Generator().manual_seed(2)) * (1 - target)
    again = importance_estimate(model, changed, c, 5, torch.Generator().manual_seed(0)).log_px
    assert torch.equal(again, estimate)  # the visible pixels of x do not enter log p(target | visible)


def test_the_deterministic_baseline_has_no_latent_and_a_cvae_completions_differ(synthetic):
    for backbone in ("mlp", "conv"):
        _, baseline, conditions = _model(synthetic, model="deterministic", backbone=backbone)
        _, cvae, _ = _model(synthetic, backbone=backbone, prior="conditional")
        assert not any(
            name.startswith(("encoder.", "mu_head", "logvar_head")) for name, _ in baseline.named_parameters()
        )
        c = conditions.test[:6].repeat(4, 1, 1, 1)
        gen = torch.Generator().manual_seed(0)
        same = torch.stack([baseline.sample(c, gen) for _ in range(3)])
        assert (same == same[0]).all()
        different = torch.stack([cvae.sample(c, gen) for _ in range(3)])
        assert (different[0] != different[1]).any()
        mask = target_of(c)
        assert diversity(same, mask).abs().max() == 0
        assert (diversity(different, mask) > 0).all()


@pytest.mark.parametrize("task", ["quadrants:1", "quadrants:3", "inpaint:10"])
def test_completions_keep_the_visible_pixels_as_given(synthetic, task):
    _, model, conditions = _model(synthetic, task=task, backbone="conv", prior="conditional")
    c = conditions.test[:16]
    visible = 1 - target_of(c)
    completion = model.sample(c, torch.Generator().manual_seed(0))
    assert torch.equal(completion * visible, visible_of(c) * visible)
    x = synthetic.test.images[:16].float() / 255
    assert torch.equal(model.reconstruct(x, c) * visible, visible_of(c) * visible)


def test_completion_scores_by_hand():
    x = torch.zeros(1, 1, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :4, :] = 1  # the top half is the target
    wrong, exact = torch.full((1, 1, 8, 8), 5.0), torch.full((1, 1, 8, 8), 5.0)  # visible pixels do not count
    wrong[..., :4, :], exact[..., :4, :] = 1.0, 0.0
    scores = completion_scores(torch.stack([wrong, exact]), x, mask)
    assert scores["target_mse_best"][0] == 0.0  # the second completion is exact on the target
    assert scores["target_mse_mean"][0] == pytest.approx(0.25)  # the mean completion is 0.5 there
    assert scores["diversity"][0] == pytest.approx(1.0)  # one pair, squared difference 1 at every target pixel


@pytest.mark.parametrize("conditioning", CONDITIONINGS.names())
@pytest.mark.parametrize("backbone", ["mlp", "conv"])
def test_every_mechanism_carries_an_image_condition(synthetic, conditioning, backbone):
    config = CellConfig(**{**TINY, "task": "quadrants:2", "conditioning": conditioning, "backbone": backbone})
    bundle = synthetic.with_train(synthetic.train.seeded_subset(256, 0))
    trained = train_cell(config.canonical(), device="cpu", bundle=bundle)
    assert torch.isfinite(torch.tensor(trained.log[-1]["loss"]))
    c = trained.conditions.test[:4]
    assert trained.model.sample(c, torch.Generator().manual_seed(0)).shape == (4, 1, 28, 28)


def test_a_quadrant_cell_runs_end_to_end_and_bench_sample_completes_a_test_image(tmp_path, cli):
    from PIL import Image

    results, grid = tmp_path / "results", tmp_path / "q.yaml"
    base = {"dataset": "synthetic", "condition": "image", "task": "quadrants:1", "backbone": "mlp", "hidden": [64]}
    base |= {"train_size": 500, "epochs": 1, "latent_dim": 4, "prior": "conditional"}
    small_eval = {"recon_size": 200, "n_samples": 300, "nll_size": 50, "nll_k": 5, "inception": False}
    grid.write_text(json.dumps({"name": "q", "base": base, "eval": small_eval}))
    run = cli("run", "--grid", grid, "--results", results, "--device", "cpu")
    assert run.returncode == 0, run.stderr
    (metrics_file,) = results.glob("*/metrics.json")
    metrics = json.loads(metrics_file.read_text())
    assert metrics["diversity"] > 0 and metrics["target_xent_iw"] <= metrics["target_xent_elbo"]
    assert metrics["protocol"]["conditions"]["task"] == "quadrants:1"
    sample = ["sample", "--cell", metrics_file.parent.name, "--results", results, "--scale", "1"]
    out = tmp_path / "completions.png"
    assert cli(*sample, "--image", "test:3", "-n", "4", "--out", out).returncode == 0
    with Image.open(out) as image:  # input, 4 completions, truth: one row of 6 images, 1 px padding
        assert image.size == (6 * 28 + 7, 28 + 2)
    wrong = cli(*sample, "--image", "test:99999")
    assert wrong.returncode == 2 and "expected test:INDEX with INDEX from 0 to" in wrong.stderr
    missing = cli(*sample, "--label", "3")
    assert missing.returncode == 2 and "give --image test:INDEX" in missing.stderr

"""Findings valid by construction (issue 30): no comparison across levels that change what a metric's
value means, every pair of a numeric axis, no test from too few seeds, and nulls that say what they
could have detected."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

from benchmark.report.comparability import finding_metrics, metrics_along
from benchmark.report.stats import (
    MIN_SEEDS,
    comparisons,
    detectable_difference,
    effect_interval,
    findings,
    pairs_needed,
    power,
)


def _frame(axis: str, levels: dict, seeds: int, metrics=("sse_image", "mse_pixel"), wobble=0.3) -> pd.DataFrame:
    """One row per (level, seed): each metric = 10 + the level's effect + a per-seed shift shared by every
    level (the pairing) + a small per-cell wobble, so that paired differences vary."""
    rows = []
    for i, (level, effect) in enumerate(levels.items()):
        for seed in range(seeds):
            noise = wobble * (((seed * 7 + i * 3) % 5) - 2) / 2
            row = {axis: level, "seed": seed, "status": "done"}
            row.update({m: 10 + effect + 0.5 * seed + noise for m in metrics})
            rows.append(row)
    return pd.DataFrame(rows)


def test_a_per_image_sum_is_not_compared_across_data_sets_and_its_per_pixel_form_is():
    frame = _frame("dataset", {"mnist": 0.0, "fashion_mnist": 5.0}, seeds=5)
    compared, refused = metrics_along(frame, "dataset", (), ["sse_image"])
    assert compared == ["mse_pixel"]
    assert [(r.metric, r.instead) for r in refused] == [("sse_image", "mse_pixel")]
    assert {c.metric for c in comparisons(frame, ["dataset", "seed"], ["sse_image"])} == {"mse_pixel"}
    lines = findings(frame, comparisons(frame, ["dataset", "seed"], ["sse_image"]), ["dataset", "seed"], ["sse_image"])
    assert lines[0] == (
        "**sse_image** is not compared along dataset: data sets differ in pixels per image and channels; "
        "compared instead: **mse_pixel**."
    )
    assert lines[1].startswith("**mse_pixel**: dataset=mnist has the best mean")


PIXEL_METRICS = [
    "sse_image",
    "mse_pixel",
    "ssim",
    "ssim_gaussian",
    "bits_per_dim",
    "target_xent_iw",
    "target_xent_per_pixel",
    "target_mse_mean",
    "target_mse_best",
    "ssim_mean",
    "ssim_best",
    "diversity",
]


@pytest.mark.parametrize("metric", PIXEL_METRICS)
def test_no_pixel_metric_is_compared_across_image_sizes(metric):
    """Each size's test images are the same images at another resolution: a per-pixel error of a 64 px
    upsample, its SSIM (a window of fixed pixels), its bits/dim change with the size alone, so neither a sum
    nor its per-pixel form is compared, and nothing is offered instead; a pooled comparison is refused too."""
    frame = _frame("image_size", {28: 0.0, 64: 5.0}, seeds=5, metrics=(metric,))
    compared, (refusal,) = metrics_along(frame, "image_size", (), [metric])
    assert compared == [] and refusal.instead is None
    assert "pixel" in refusal.why or "window" in refusal.why
    assert comparisons(frame, ["image_size", "seed"], [metric]) == []
    crossed = pd.concat([frame.assign(beta=1.0), frame.assign(beta=2.0)])
    assert metrics_along(crossed, "beta", (), [metric])[0] == []


def test_a_pixel_metric_refused_across_sizes_is_said_so():
    frame = _frame("image_size", {28: 0.0, 64: 5.0}, seeds=5, metrics=("sse_image", "ssim"))
    lines = findings(frame, [], ["image_size", "seed"], ["sse_image", "ssim"])
    assert lines == [
        "**sse_image** is not compared along image_size: a per-image sum grows with the number of pixels.",
        "**ssim** is not compared along image_size: SSIM's window is a fixed number of pixels, so at each size it "
        "spans another share of the image, whose pixels are the same images at another resolution.",
    ]


def test_metrics_without_a_normalised_form_are_refused_along_the_axes_that_change_them():
    frame = _frame("task", {"inpaint:14": 0.0, "superres:2": 50.0}, seeds=3, metrics=("target_xent_iw", "diversity"))
    assert metrics_along(frame, "task", (), ["target_xent_iw", "diversity"])[0] == ["diversity"]
    sizes = _frame("image_size", {28: 0.0, 64: 5.0}, seeds=3, metrics=("fid_domain", "cond_acc"))
    compared, refused = metrics_along(sizes, "image_size", (), ["fid_domain", "cond_acc"])
    assert compared == [] and refused[0].instead is None and "resizes every image to 28 px" in refused[0].why
    # a zipped axis that changes the field refuses too, and says which field
    zipped = sizes.assign(backbone=sizes["image_size"].map({28: "conv", 64: "article"}))
    (refusal,) = metrics_along(zipped, "backbone", ("image_size",), ["fid_domain"])[1]
    assert refusal.why.startswith("image_size changes with it")


def test_reconstructions_through_q_are_no_finding_of_an_image_task():
    frame = _frame("model", {"deterministic": 0.0, "cvae": 1.0}, seeds=3, metrics=("sse_image", "diversity"))
    assert finding_metrics(frame, ["sse_image", "diversity"]) == (["sse_image", "diversity"], [])
    frame["task"] = "quadrants:1"
    assert finding_metrics(frame, ["sse_image", "diversity"]) == (["diversity"], ["sse_image"])


def test_a_numeric_axis_compares_every_pair_and_the_finding_names_each():
    frame = _frame("beta", {0.25: 0.0, 0.5: 1.0, 1.0: 2.0, 2.0: 3.0}, seeds=4, metrics=("mse_pixel",), wobble=0.2)
    found = comparisons(frame, ["beta", "seed"], ["mse_pixel"])
    assert {(c.a, c.b) for c in found} == {(0.25, 0.5), (0.25, 1.0), (0.25, 2.0), (0.5, 1.0), (0.5, 2.0), (1.0, 2.0)}
    assert {c.family for c in found} == {6}
    (line,) = findings(frame, found, ["beta", "seed"], ["mse_pixel"])
    assert line.startswith("**mse_pixel**: beta=0.25 has the best mean")
    for other in ("0.5 (by", "1.0 (by", "2.0 (by"):
        assert other in line


def test_a_one_seed_grid_makes_no_significance_claim():
    """The smoke grid's case: one seed, four other levels, so four pairs with large, consistent differences."""
    rows = []
    for latent in (2, 4, 8, 16):
        for mode, effect in (("none", 0.0), ("concat", -3.0)):
            rows.append(
                {
                    "conditioning": mode,
                    "latent_dim": latent,
                    "seed": 0,
                    "status": "done",
                    "mse_pixel": 10 + effect + 0.1 * latent,
                }
            )
    frame = pd.DataFrame(rows)
    axes = ["conditioning", "latent_dim", "seed"]
    found = [c for c in comparisons(frame, axes, ["mse_pixel"]) if c.axis == "conditioning"]
    assert found and all(c.untested and not c.significant and c.p != c.p for c in found)
    (line,) = findings(frame, found, axes, ["mse_pixel"], only_axis="conditioning")
    assert "significantly" not in line and f"a test needs at least {MIN_SEEDS}" in line


def test_the_minimal_detectable_difference_matches_scipys_noncentral_t():
    """Two-sided paired t-test, 10 pairs, spread 1, level 0.05: 0.996 (a Monte-Carlo check of 400,000
    simulated tests at 0.996 rejected 80.000% of the time). Recomputed here from scipy's noncentral t
    directly: power = P(T > t_c) + P(T < -t_c), T ~ nct(9, delta sqrt(10) / spread)."""
    mde = detectable_difference(spread=1.0, pairs=10, alpha=0.05)
    assert mde == pytest.approx(0.996, abs=5e-4)
    critical = stats.t.ppf(0.975, 9)
    by_hand = stats.nct.sf(critical, 9, mde * math.sqrt(10)) + stats.nct.cdf(-critical, 9, mde * math.sqrt(10))
    assert by_hand == pytest.approx(0.8, abs=1e-9)
    # spread 2.5, 3 pairs, the Holm level of a family of 4: scales with the spread, needs a bigger difference
    wide = detectable_difference(spread=2.5, pairs=3, alpha=0.05 / 4)
    t3 = stats.t.ppf(1 - 0.05 / 8, 2)
    shift = wide * math.sqrt(3) / 2.5
    assert stats.nct.sf(t3, 2, shift) + stats.nct.cdf(-t3, 2, shift) == pytest.approx(0.8, abs=1e-9)


def test_the_seeds_needed_are_the_fewest_that_reach_80_percent_power():
    n = pairs_needed(0.5, 1.0, 0.05)
    assert power(0.5, 1.0, n, 0.05) >= 0.8 > power(0.5, 1.0, n - 1, 0.05)
    assert n == 34  # Cohen's tables: d = 0.5, paired, two-sided 0.05, power 0.8 -> 34 pairs
    assert pairs_needed(0.0, 1.0, 0.05) is None


def test_the_interval_of_d_inverts_the_noncentral_t():
    """At 3 pairs a d of 56 is compatible with anything from about 9 to 108; the endpoints are the
    noncentrality parameters at which the observed t sits at the 97.5th and 2.5th percentile."""
    low, high = effect_interval(56.0, 3)
    t_obs = 56.0 * math.sqrt(3)
    assert stats.nct.cdf(t_obs, 2, low * math.sqrt(3)) == pytest.approx(0.975, abs=1e-6)
    assert stats.nct.cdf(t_obs, 2, high * math.sqrt(3)) == pytest.approx(0.025, abs=1e-6)
    assert 5 < low < 20 and 80 < high < 150
    assert effect_interval(-2.0, 5) == pytest.approx(tuple(-v for v in reversed(effect_interval(2.0, 5))))


def test_a_null_carries_what_it_could_have_detected():
    frame = _frame("conditioning", {"none": 0.0, "concat": 0.05}, seeds=3, metrics=("mse_pixel",), wobble=1.0)
    (c,) = comparisons(frame, ["conditioning", "seed"], ["mse_pixel"])
    assert not c.significant and c.detectable == pytest.approx(detectable_difference(c.spread, 3, 0.05))
    (line,) = findings(frame, [c], ["conditioning", "seed"], ["mse_pixel"])
    assert "not significantly different" in line and "detectable with 80% power" in line and "seeds" in line


def _sized_store(tmp_path, n_samples: int = 10_000):
    """A store written by hand: image_size 28 and 64 crossed with conditioning none/concat, 3 seeds; the
    per-image sum grows with the pixels, the per-pixel error does not."""
    import yaml

    from benchmark.fileio import write_json
    from benchmark.grid import load_grid
    from benchmark.store import CellStore

    grid_file = tmp_path / "sizes.yaml"
    spec = {
        "name": "sizes",
        "base": {"dataset": "fashion_mnist"},
        "axes": {"image_size": [28, 64], "conditioning": ["none", "concat"]},
        "seeds": [0, 1, 2],
        "eval": {"n_samples": n_samples},
        "question": {
            "text": "Does size matter?",
            "axis": "conditioning",
            "metrics": ["sse_image", "fid_domain", "ssim"],
        },
        "findings_by": ["image_size"],
    }
    grid_file.write_text(yaml.safe_dump(spec))
    grid = load_grid(grid_file)
    store = CellStore(tmp_path / "results")
    store.record_grid(grid.name, str(grid_file), [{"id": c.id, "axes": dict(c.axis_values)} for c in grid.cells])
    for cell in grid.cells:
        axes = dict(cell.axis_values)
        pixels, seed = axes["image_size"] ** 2, axes["seed"]
        mse = (
            0.03 - 0.005 * (axes["conditioning"] == "concat") + 0.001 * seed + 0.0003 * (seed * axes["image_size"] % 5)
        ) + 0.0004 * ((seed + 2 * (axes["conditioning"] == "concat")) % 3)  # paired differences that vary
        write_json(
            store.cell_dir(cell.id) / "config.json",
            {
                **cell.resolved(),
                "provenance": {"packages": {"torch": "x"}, "git_commit": "abc", "device": "cpu", "wall_seconds": 1.0},
            },
        )
        write_json(
            store.cell_dir(cell.id) / "metrics.json",
            {
                "mse_pixel": mse,
                "sse_image": mse * pixels,
                "ssim": 0.6 - mse - 0.01 * (pixels > 784),
                "fid_domain": 100 + 50 * (pixels > 784) + seed + ((seed + (axes["conditioning"] == "none")) % 2),
                "cond_acc": 0.8 + 0.01 * seed,
                "fid_domain_floor": 2.0 + (pixels > 784),
                "kid_domain_floor": 0.001,
                "classifier_accuracy": 0.91,
                "cond_acc_per_class": {"shirt": 0.5 + 0.01 * seed, "boot": 0.9},
                "protocol": {"eval": cell.eval.model_dump()},
            },
        )
        write_json(store.cell_dir(cell.id) / "log.json", [{"epoch": 1, "loss": 1.0, "recon": 1.0, "kl": 0.0}])
    return store, grid_file


def test_a_report_refuses_invalid_comparisons_and_its_index_never_shows_one(tmp_path):
    from benchmark.report.frame import from_grid_file
    from benchmark.report.index import write_index
    from benchmark.report.render import render_report

    store, grid_file = _sized_store(tmp_path)
    out = tmp_path / "reports"
    text = render_report(store, from_grid_file(store, grid_file), out).read_text()
    comparisons_part = text.split("## Comparisons")[1].split("### image_size")[1].split("## ")[0]
    assert "- **sse_image** is not compared along image_size: a per-image sum grows" in comparisons_part
    assert "- **fid_domain** is not compared along image_size: the domain classifier resizes" in comparisons_part
    assert "- **ssim** is not compared along image_size: SSIM's window" in comparisons_part
    assert " by " not in comparisons_part  # no comparison across sizes at all, not even per pixel
    conditioning_part = text.split("## Comparisons")[1].split("### conditioning")[1].split("## ")[0]
    assert "- **ssim** is not compared along conditioning: its mean would pool over image_size" in conditioning_part
    # the question's axis is answered within each size: at a glance, in the findings and in a faceted figure
    glance = text.split("## At a glance")[1].split("## ")[0]
    assert "| image_size | conditioning | cells | sse_image | fid_domain | ssim |" in glance
    assert "| 28 | concat | 3 | **" in glance and "| 64 | concat | 3 | **" in glance
    assert "### Within image_size=64" in text and "metrics_vs_conditioning_by_image_size.png" in text
    index = write_index(out).read_text()
    answers = index.split("## Does size matter?")[1]
    assert (
        "**Answer**: Within image_size=28: conditioning=concat is significantly best on sse_image and ssim" in answers
    )
    assert "Within image_size=64: **sse_image**: conditioning=concat has the best mean" in answers
    assert "- **ssim**: conditioning=" not in answers and "- **ssim** is not compared along conditioning" in answers
    # the reference rows and the per-class accuracies are published beside the table
    assert "| 28 px | 2 | 0.001 | 0.91 |" in text and "| 64 px | 3 | 0.001 | 0.91 |" in text
    assert "<details><summary>Per class</summary>" in text and "| n | boot | shirt |" in text


def test_the_index_leaves_out_fids_from_another_sample_count(tmp_path):
    from benchmark.report.frame import from_grid_file
    from benchmark.report.index import write_index
    from benchmark.report.render import render_report

    store, grid_file = _sized_store(tmp_path, n_samples=1000)
    out = tmp_path / "reports"
    render_report(store, from_grid_file(store, grid_file), out)
    answers = write_index(out).read_text().split("## Does size matter?")[1]
    assert "fid_domain** is not compared" not in answers
    assert (
        "**fid_domain** from 1,000 samples: not in this index, whose fid_domain figures all come from 10,000" in answers
    )
    assert "1,000 generated samples per cell" in answers


def test_a_question_can_correct_across_its_metrics():
    """Holm over every comparison of the question's metrics together: the family grows, so p-values too."""
    frame = _frame("beta", {0.5: 0.0, 1.0: 0.4}, seeds=5, metrics=("mse_pixel", "ssim"), wobble=0.4)
    per_metric = comparisons(frame, ["beta", "seed"], ["mse_pixel", "ssim"])
    together = comparisons(frame, ["beta", "seed"], ["mse_pixel", "ssim"], family="all")
    assert {c.family for c in per_metric} == {1} and {c.family for c in together} == {2}
    assert all(t.p_holm >= p.p_holm for t, p in zip(together, per_metric))
    assert together[0].p_holm == pytest.approx(min(1.0, 2 * min(c.p for c in together)))


def test_a_finding_does_not_pool_a_pixel_metric_over_image_sizes():
    """latent_dim compared over 28 and 128 px cells: the mean of sse_image would be the 128 px cells', and
    the per-pixel error's would mix two resamplings; neither is pooled, and the findings within each size
    keep both."""
    rows = []
    for size in (28, 128):
        for latent in (16, 64):
            for seed in range(3):
                mse = 0.02 + 0.001 * seed + 0.002 * (latent == 64) * (1 + seed % 2)
                rows.append(
                    {
                        "image_size": size,
                        "latent_dim": latent,
                        "seed": seed,
                        "status": "done",
                        "sse_image": mse * size * size,
                        "mse_pixel": mse,
                    }
                )
    frame = pd.DataFrame(rows)
    compared, refused = metrics_along(frame, "latent_dim", (), ["sse_image", "mse_pixel"])
    assert compared == [] and all(r.why.startswith("its mean would pool over image_size") for r in refused)
    within = frame[frame["image_size"] == 128]
    assert metrics_along(within, "latent_dim", (), ["sse_image", "mse_pixel"]) == (["sse_image", "mse_pixel"], [])


def test_the_seeds_needed_search_reaches_its_limit_and_not_further():
    """A tiny effect (d = 0.03) needs about 8,700 pairs: found below the 10,000 limit, not given up on."""
    n = pairs_needed(0.03, 1.0, 0.05)
    assert n is not None and 8_000 < n <= 10_000
    assert power(0.03, 1.0, n, 0.05) >= 0.8 > power(0.03, 1.0, n - 1, 0.05)
    assert pairs_needed(0.03, 1.0, 0.05, limit=5_000) is None


def test_a_likelihood_of_x_is_not_compared_with_a_likelihood_of_x_given_y():
    """The literature grid's case: the VAE's nll_iw is -log p(x), its label-conditioned twin's -log p(x|y);
    the class-marginal -log p(x) is the comparable quantity."""
    frame = _frame("conditioning", {"none": 0.0, "concat_input": -3.7}, seeds=3, metrics=("nll_iw", "nll_marginal"))
    frame["reads_condition"] = frame["conditioning"] != "none"
    compared, (refusal,) = metrics_along(frame, "conditioning", (), ["nll_iw"])
    assert compared == ["nll_marginal"] and refusal.why.startswith("reads_condition changes with it")
    same = frame.assign(reads_condition=True)  # e.g. none with a conditional prior beside concat_input
    assert metrics_along(same, "conditioning", (), ["nll_iw"]) == (["nll_iw"], [])


def test_fixed_and_dynamic_binarisation_share_a_test_set_grey_pixels_do_not():
    frame = _frame("binarize", {"fixed": 0.0, "dynamic": -1.0}, seeds=3, metrics=("nll_iw", "bits_per_dim"))
    frame["binary"] = True  # both measured on the fixed draw's test images
    assert metrics_along(frame, "binarize", (), ["nll_iw"]) == (["nll_iw"], [])
    grey = frame.replace({"binarize": {"dynamic": "none"}})
    grey["binary"] = grey["binarize"] != "none"
    compared, (refusal,) = metrics_along(grey, "binarize", (), ["nll_iw"])
    assert compared == [] and "binary and grey pixels are other data" in refusal.why


def test_a_finding_ranks_the_means_of_the_cells_every_level_shares():
    """The draws grid's case: a dynamic cell exists at binarize_seed 0 only, so level 0's mean over all its
    cells would mix in another protocol; the finding ranks the fixed cells, which every level has."""
    rows = [
        {"binarize": "fixed", "binarize_seed": k, "seed": 0, "status": "done", "mse_pixel": 10 + k} for k in range(3)
    ]
    rows.append({"binarize": "dynamic", "binarize_seed": 0, "seed": 0, "status": "done", "mse_pixel": 1.0})
    frame = pd.DataFrame(rows)
    axes = ["binarize", "binarize_seed", "seed"]
    (line,) = findings(frame, comparisons(frame, axes, ["mse_pixel"]), axes, ["mse_pixel"], only_axis="binarize_seed")
    assert line.startswith("**mse_pixel**: binarize_seed=0 has the best mean (10)")  # not (10 + 1) / 2


def test_class_accuracy_compares_a_model_that_ignores_the_condition_but_never_averages_over_one():
    """The beta grid's case: cond_acc of conditioning none is chance by construction. Along conditioning the
    chance level is the finding; along beta, a mean over none and concat would halve concat's effect; among
    cells that all ignore the condition there is nothing to compare. The conditioning grid's case: a level
    (none) whose cells read the condition under one prior and ignore it under the other pools the two."""
    rows = []
    for mode in ("none", "concat"):
        for beta in (0.5, 4.0):
            for seed in range(3):
                accuracy = 0.1 if mode == "none" else 0.8 - 0.1 * (beta == 4.0) + 0.01 * seed
                rows.append({"conditioning": mode, "beta": beta, "seed": seed, "status": "done", "cond_acc": accuracy})
    frame = pd.DataFrame(rows)
    frame["reads_condition"] = [mode != "none" for mode in frame["conditioning"]]  # Python bools, as cells_frame
    assert metrics_along(frame, "conditioning", (), ["cond_acc", "label_information"])[1] == []
    compared, (refusal,) = metrics_along(frame, "beta", (), ["cond_acc", "sse_image"])
    assert compared == ["sse_image"] and refusal.metric == "cond_acc" and "some ignore it" in refusal.why
    concat = frame[frame["conditioning"] == "concat"]
    assert metrics_along(concat, "beta", (), ["cond_acc"]) == (["cond_acc"], [])
    none = frame[frame["conditioning"] == "none"]
    compared, (refusal,) = metrics_along(none, "beta", (), ["cond_acc", "sse_image"])
    assert compared == ["sse_image"] and refusal.why.startswith("no cell compared here reads the condition")

    priors = frame.assign(prior="standard", beta=0.5)
    priors = pd.concat([priors, priors.assign(prior="conditional", reads_condition=True)], ignore_index=True)
    (refusal,) = metrics_along(priors, "conditioning", (), ["cond_acc"])[1]
    assert refusal.why.startswith("at conditioning=none some cells read the condition")
    standard = priors[priors["prior"] == "standard"]
    assert metrics_along(standard, "conditioning", (), ["cond_acc"]) == (["cond_acc"], [])


def test_whether_a_cell_reads_its_condition_is_its_model_s_to_say():
    """An autoencoder with conditioning none still samples each class from its own code Gaussian; a VQ-VAE's
    code prior reads the label though its networks hold conditioning none; the VAE reads nothing."""
    from benchmark.report.frame import _reads_condition

    assert _reads_condition({"model": "ae", "conditioning": "none", "condition": "label"})
    assert not _reads_condition({"model": "ae", "conditioning": "none", "condition": "text"})
    assert _reads_condition({"model": "vqvae", "conditioning": "none"})
    assert not _reads_condition({"model": "vae", "conditioning": "none", "prior": "standard"})
    assert not _reads_condition({"model": "cvae", "conditioning": "none", "prior": "standard"})
    assert _reads_condition({"model": "cvae", "conditioning": "none", "prior": "conditional"})

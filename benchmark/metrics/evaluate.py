"""Evaluate a trained cell under the fixed protocol; every metric group is registered here once.

Generated images are quantised to uint8, as a saved image would be, before any
feature extractor sees them; real images are the test split at the cell's size.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from benchmark import paths
from benchmark.fileio import atomic_write
from benchmark.metrics import completion, likelihood, reconstruction
from benchmark.metrics.classifier import conditional_accuracy, domain_classifier
from benchmark.metrics.frechet import GaussianStats, frechet_distance, kernel_distance
from benchmark.metrics.inception import InceptionExtractor, Unavailable
from benchmark.metrics.protocol import EvalConfig
from benchmark.metrics.registry import METRIC_GROUPS, MetricSpec, metric_group, protocol_version
from benchmark.models.cost import parameter_count, training_flops_per_image
from benchmark.models.loss import likelihood_case
from benchmark.seeding import stream_generator
from benchmark.store.cells import png_bytes
from benchmark.training.trainer import TrainedCell

COMPLETIONS = 10  # sampled completions of each test input (image tasks)
RELIABILITY_BINS = 15  # equal-width confidence bins of the generative classifier's calibration (Guo et al. 2017)

# What a value depends on by its definition (MetricSpec.depends_on): reports do not compare it across
# levels of an axis that changes one of these cell fields (report/comparability.py).
PER_IMAGE_SUM = (
    ("image_size", "a per-image sum grows with the number of pixels"),
    ("dataset", "data sets differ in pixels per image and channels"),
)
DOMAIN_INSTRUMENT = (
    ("image_size", "the domain classifier resizes every image to 28 px first, so each size is judged at 28 px"),
    ("dataset", "each data set has its own domain classifier"),
    ("task", "the task sets how much of each sample is given rather than generated"),
)
DENSITY_DATA = (
    ("dataset", "a density of other data"),
    ("binary", "binary and grey pixels are other data"),
    ("recon_loss", "densities of different decoder families are not on one scale"),
)
DENSITY = (*DENSITY_DATA, ("image_size", "a density over another number of pixels"))
READS_CONDITION = (
    "reads_condition",
    "-log p(x|c) is -log p(x) where the model ignores the condition (conditioning none, standard prior) and "
    "-log p(x|y) where it reads it: two different quantities",
)
TASK_SUM = (("task", "a sum over the target pixels, whose number the task sets"), *DENSITY_DATA)
LABELS = (("dataset", "data sets differ in their number of classes"),)
GIVEN_PIXELS = (("task", "the image includes the pixels the task gives"),)
INCEPTION_REFERENCE = (
    ("dataset", "another test set as the reference"),
    ("image_size", "the reference is the test split at each size"),
)


@dataclass
class EvalContext:
    trained: TrainedCell
    eval: EvalConfig
    data_dir: object = None
    notes: dict = field(default_factory=dict)  # unavailable metrics and their reasons, extractor info

    @property
    def model(self):
        return self.trained.model

    @property
    def device(self) -> torch.device:
        return self.trained.device

    @functools.cached_property
    def recon_index(self) -> torch.Tensor:
        n = len(self.trained.bundle.test)
        size = min(self.eval.recon_size or n, n)
        if size == n:
            return torch.arange(n)
        gen = stream_generator(self.trained.config.seed, "subset")
        return torch.randperm(n, generator=gen)[:size].sort().values

    def batches(self, index: torch.Tensor):
        test, conds = self.trained.bundle.test, self.trained.conditions.test
        for part in index.split(self.eval.batch_size):
            yield test.images[part].to(self.device).float().div_(255), conds[part].to(self.device)

    @functools.cached_property
    def sample_conditions(self) -> torch.Tensor:
        """The test split's conditions in order, repeated to n_samples, so the class mix matches."""
        conds = self.trained.conditions.test
        reps = math.ceil(self.eval.n_samples / len(conds))
        return conds.repeat(reps, *[1] * (conds.dim() - 1))[: self.eval.n_samples]

    @functools.cached_property
    def sample_labels(self) -> torch.Tensor:
        """The class of the test image behind each sample's condition (the condition itself for labels)."""
        labels = self.trained.bundle.test.labels
        return labels.repeat(math.ceil(self.eval.n_samples / len(labels)))[: self.eval.n_samples]

    @functools.cached_property
    def samples(self) -> torch.Tensor:
        """n_samples generated images, uint8, noise from the cell's seed."""
        gen = self.generator("sample")
        out = [
            self.model.sample(c.to(self.device), gen).mul(255).round().to(torch.uint8).cpu()
            for c in self.sample_conditions.split(self.eval.batch_size)
        ]
        return torch.cat(out)

    def likelihood_images(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The test images of the likelihood metrics (nll_size of them, None: the whole split) and conditions."""
        index = self.recon_index if self.eval.nll_size is None else self.recon_index[: self.eval.nll_size]
        x = self.trained.bundle.test.images[index].to(self.device).float() / 255
        return x, self.trained.conditions.test[index].to(self.device)

    def generator(self, stream: str) -> torch.Generator:
        """A fresh generator of one of the cell's evaluation streams (the same draws each time)."""
        return stream_generator(self.trained.config.seed, stream, self.device)

    def unavailable(self, names: list[str], reason: str) -> dict:
        for name in names:
            self.notes.setdefault("unavailable", {})[name] = reason
        return dict.fromkeys(names)


# Tolerances of `bench reproduce`, (rel, abs): about 10x the spread measured across CPUs on the smoke grid
# (AVX2, AVX-512 and PyTorch's scalar kernels, 1 or 2 threads): sse_image / mse_pixel 2.2e-4 relative,
# ssim 7.4e-4, fid_domain 4.1e-4 relative, cond_acc 0.002, nll_iw 1.6e-4 relative, active_units 0.
# tests/test_reference.py shows a planted training bug (beta off by 20%) exceeds them. The same cells with
# the continuous Bernoulli vary 10x more between kernels (sse_image 2.1e-3, fid_domain 3.3e-3 relative):
# the CI smoke grid keeps the plain Bernoulli for that reason.


@metric_group(
    "reconstruction",
    2,
    MetricSpec(
        "mse_pixel",
        "mean over test images and pixels of (x - x_hat)^2, x_hat = decoder mean at z = mu(x, c); pixels in [0, 1]",
        "lower",
        tolerance=(0.002, 0.0),
        through_q=True,
    ),
    MetricSpec(
        "sse_image",
        "mean over test images of the per-image sum of squared errors (what the original CVAE write-up calls MSE)",
        "lower",
        headline=True,
        tolerance=(0.002, 0.0),
        depends_on=PER_IMAGE_SUM,
        normalised="mse_pixel",
        through_q=True,
    ),
    MetricSpec(
        "ssim",
        "mean over test images of skimage.metrics.structural_similarity(x, x_hat, data_range=1, channel_axis=0 "
        "for RGB) with skimage's default 7x7 uniform window and sample covariance",
        "higher",
        headline=True,
        tolerance=(0.0, 0.007),
        through_q=True,
    ),
    MetricSpec(
        "ssim_gaussian",
        "SSIM as Wang et al. 2004 compute it: skimage structural_similarity with an 11-tap Gaussian window "
        "(sigma 1.5), population covariance, data_range 1; mean over the same test images",
        "higher",
        headline=True,
        tolerance=(0.0, 0.007),
        through_q=True,
    ),
)
def reconstruction_metrics(ctx: EvalContext) -> dict:
    sse, ssims, gaussian, pixels = [], [], [], 0
    for x, c in ctx.batches(ctx.recon_index):
        x_hat = ctx.model.reconstruct(x, c)
        sse.append(reconstruction.squared_errors(x, x_hat).cpu())
        ssims.append(reconstruction.ssim_per_image(x, x_hat))
        gaussian.append(reconstruction.ssim_per_image(x, x_hat, window="gaussian"))
        pixels += x.numel()
    sse_all = torch.cat(sse)
    return {
        "mse_pixel": (sse_all.sum() / pixels).item(),
        "sse_image": sse_all.mean().item(),
        "ssim": float(np.concatenate(ssims).mean()),
        "ssim_gaussian": float(np.concatenate(gaussian).mean()),
    }


@metric_group(
    "domain",
    2,
    MetricSpec(
        "fid_domain",
        "Frechet distance (cleanfid.fid.frechet_distance) between penultimate-layer features of the data set's "
        "shipped domain classifier on n_samples generated images and on the test split; NOT Inception FID. "
        "Biased upwards at small n_samples: comparable only at one sample count",
        "lower",
        headline=True,
        tolerance=(0.004, 0.0),
        depends_on=DOMAIN_INSTRUMENT,
        eval_settings=("n_samples",),
    ),
    MetricSpec(
        "kid_domain",
        "kernel inception distance (cleanfid.fid.kernel_distance) on the same domain features; unbiased in n",
        "lower",
        depends_on=DOMAIN_INSTRUMENT,
    ),
    MetricSpec(
        "cond_acc",
        "accuracy of the domain classifier on generated samples against the class asked for",
        "higher",
        headline=True,
        tolerance=(0.0, 0.02),
        depends_on=DOMAIN_INSTRUMENT,
    ),
    MetricSpec("cond_acc_per_class", "cond_acc of each class asked for"),
    MetricSpec(
        "fid_domain_floor",
        "reference row, the floor of fid_domain: the same Frechet distance with the first n_samples real "
        "training images in place of the generated ones (what a perfect generator scores at this n)",
    ),
    MetricSpec("kid_domain_floor", "reference row: kid_domain of the same real training images"),
    MetricSpec(
        "classifier_accuracy",
        "reference row, the ceiling of cond_acc: the domain classifier's accuracy on the real test split",
    ),
)
def domain_metrics(ctx: EvalContext) -> dict:
    names = ["fid_domain", "kid_domain", "cond_acc"]
    bundle = ctx.trained.bundle
    if bundle.num_classes is None:
        return ctx.unavailable(names, f"not applicable: {bundle.name} has no domain classifier")
    classifier = domain_classifier(bundle.name, ctx.data_dir, ctx.device)
    ctx.notes["domain_classifier"] = {"key": classifier.key, "test_accuracy": classifier.test_accuracy}
    real = _real_features(bundle, bundle.image_size, classifier.key, lambda: classifier.run(bundle.test.images)[0])
    fake, predicted = classifier.run(ctx.samples)
    accuracy, per_class = conditional_accuracy(predicted, ctx.sample_labels, bundle.class_names)
    floor_images = bundle.train.images[: ctx.eval.n_samples]
    floor = _real_features(
        bundle,
        bundle.image_size,
        f"{classifier.key}-train{len(floor_images)}",
        lambda: classifier.run(floor_images)[0],
        split="train",
    )
    return {
        "fid_domain": frechet_distance(GaussianStats.of(real), GaussianStats.of(fake.numpy())),
        "kid_domain": kernel_distance(real, fake.numpy()),
        "cond_acc": accuracy,
        "cond_acc_per_class": per_class,
        "fid_domain_floor": frechet_distance(GaussianStats.of(real), GaussianStats.of(floor)),
        "kid_domain_floor": kernel_distance(real, floor),
        "classifier_accuracy": classifier.test_accuracy,
    }


@metric_group(
    "inception",
    1,
    MetricSpec(
        "fid_inception",
        "clean-fid 'clean' mode FID with its Inception-v3 features (generated vs test split); grey images "
        "repeated to 3 channels",
        "lower",
        headline=True,
        depends_on=INCEPTION_REFERENCE,
        eval_settings=("n_samples",),
    ),
    MetricSpec(
        "kid_inception", "clean-fid KID on the same Inception features", "lower", depends_on=INCEPTION_REFERENCE
    ),
)
def inception_metrics(ctx: EvalContext) -> dict:
    names = ["fid_inception", "kid_inception"]
    if not ctx.eval.inception:
        return ctx.unavailable(names, "switched off in the grid's eval settings")
    try:
        extractor = InceptionExtractor(ctx.eval.inception_weights, ctx.device)
    except Unavailable as reason:
        return ctx.unavailable(names, str(reason))
    bundle = ctx.trained.bundle
    real = _real_features(bundle, bundle.image_size, extractor.key, lambda: extractor.features(bundle.test.images))
    fake = extractor.features(ctx.samples)
    return {
        "fid_inception": frechet_distance(GaussianStats.of(real), GaussianStats.of(fake)),
        "kid_inception": kernel_distance(real, fake),
    }


@metric_group(
    "likelihood",
    2,
    MetricSpec(
        "nll_iw",
        "importance-weighted estimate of -log p(x|c) in nats per image (k = nll_k samples from q(z|x,c), "
        "the cell's prior p(z) or p(z|c), nll_size test images), reported only where the decoder is a "
        "normalised density of the data",
        "lower",
        headline=True,
        tolerance=(0.002, 0.0),
        unit="nats",
        depends_on=(*DENSITY, READS_CONDITION),
        normalised="nll_marginal",
    ),
    MetricSpec("nll_iw_se", "standard error of nll_iw over test images (their spread / sqrt(n))", unit="nats"),
    MetricSpec(
        "nll_iw_mc_se",
        "Monte-Carlo standard error of nll_iw from the importance weights themselves (delta method: "
        "Var log p_hat ~ (k sum w^2 / (sum w)^2 - 1) / k per image)",
        unit="nats",
    ),
    MetricSpec(
        "neg_elbo",
        "negative ELBO (beta = 1) in nats per image from the same samples",
        "lower",
        unit="nats",
        depends_on=(*DENSITY, READS_CONDITION),
        normalised="bits_per_dim",
    ),
    MetricSpec(
        "bits_per_dim",
        "nll_iw / (D ln 2); for the continuous Bernoulli on 8-bit data (nll_iw + D ln 256) / (D ln 2), the "
        "density at the pixel values rescaled to [0, 256), without dequantisation",
        "lower",
        depends_on=(*DENSITY_DATA, READS_CONDITION),
    ),
    MetricSpec(
        "kl_per_dim",
        "mean over test images of KL(q(z_i|x,c) || p(z_i)) for each latent dimension i, against the cell's "
        "prior (N(0, 1), or p(z_i|c) when it learns one)",
    ),
    MetricSpec(
        "active_units",
        "number of latent dimensions whose Var_x(E_q[z_i]) exceeds 0.01",
        "higher",
        tolerance=(0.0, 1.0),
    ),
)
def likelihood_metrics(ctx: EvalContext) -> dict:
    config = ctx.trained.config
    x, c = ctx.likelihood_images()
    metrics = likelihood.latent_health(ctx.model, x, c)
    density, case = likelihood_case(config)
    ctx.notes["likelihood"] = case
    if not density:
        estimated = [name for name in METRIC_GROUPS["likelihood"].names if name not in metrics]
        return {**metrics, **ctx.unavailable(estimated, case)}
    generator = ctx.generator("likelihood")  # one stream over all batches: independent draws per image
    estimates = [
        likelihood.importance_estimate(ctx.model, xb, cb, ctx.eval.nll_k, generator, config.recon_loss)
        for xb, cb in zip(x.split(ctx.eval.batch_size), c.split(ctx.eval.batch_size))
    ]
    nll = -torch.cat([e.log_px for e in estimates])
    variance = torch.cat([e.log_var for e in estimates])
    pixels = x[0].numel()
    shift = pixels * math.log(256) if config.recon_loss == "cbernoulli" else 0.0
    return {
        **metrics,
        "nll_iw": nll.mean().item(),
        "nll_iw_se": likelihood.standard_error(nll),
        "nll_iw_mc_se": (variance.sum().sqrt() / len(nll)).item(),
        "neg_elbo": -torch.cat([e.mean_weight for e in estimates]).mean().item(),
        "bits_per_dim": (nll.mean().item() + shift) / (pixels * math.log(2)),
    }


@metric_group(
    "label",
    3,
    MetricSpec(
        "nll_marginal",
        "-log p(x) of the model's class-marginal, p(x) = (1/K) sum_y p(x|y), each p(x|y) importance-sampled "
        "with the same noise for every y, in nats per image; for a model that ignores the label (conditioning "
        "none, standard prior) p(x|y) = p(x), so reports take its nll_iw",
        "lower",
        headline=True,
        unit="nats",
        depends_on=DENSITY,
    ),
    MetricSpec(
        "label_information",
        "ln K minus the log-loss of the model's generative classifier p(y|x) = p(x|y) / sum_y' p(x|y') on the "
        "real test pairs (x, y), i.e. the mean of log p(x|y) - log p(x): at most ln K "
        "(label_information_bound); below 0 where that classifier's log-loss exceeds a uniform guess's (it is "
        "confidently wrong on some images), which says nothing about whether the label is used; 0 by "
        "definition for conditioning none with the standard prior",
        "higher",
        headline=True,
        unit="nats",
        depends_on=LABELS,
    ),
    MetricSpec("label_information_bound", "ln K, the most label_information can be", unit="nats"),
    MetricSpec(
        "generative_log_loss",
        "the generative classifier's mean -log p(y|x) on the real test pairs (ln K - label_information)",
        "lower",
        unit="nats",
        depends_on=LABELS,
    ),
    MetricSpec(
        "generative_accuracy",
        "accuracy of argmax_y p(x|y) as a classifier of the test images (ties shared); chance (1/K) by "
        "definition for conditioning none with the standard prior",
        "higher",
        headline=True,
        depends_on=LABELS,
    ),
    MetricSpec("generative_accuracy_per_class", "generative_accuracy on the test images of each class"),
    MetricSpec(
        "generative_ece",
        f"expected calibration error of the generative classifier: over {RELIABILITY_BINS} equal-width bins of "
        "its confidence max_y p(y|x), the image-weighted mean of |accuracy of argmax - mean confidence| "
        "(Guo et al. 2017); 0 for a calibrated classifier",
        "lower",
    ),
    MetricSpec(
        "generative_reliability",
        "per confidence bin: [mean confidence, accuracy, images], the data of the reliability figure",
    ),
)
def label_metrics(ctx: EvalContext) -> dict:
    names = list(METRIC_GROUPS["label"].names)
    config, classes = ctx.trained.config, ctx.trained.conditions.source.num_classes
    if classes is None:
        return ctx.unavailable(names, "not applicable: the condition is not a class label")
    density, case = likelihood_case(config)
    if not density:
        return ctx.unavailable(names, case)
    if not ctx.model.uses_condition:
        ctx.notes["label"] = (
            "conditioning none with the standard prior ignores the label: information 0 and chance accuracy "
            "by definition"
        )
        return {
            **dict.fromkeys(names),
            "label_information": 0.0,
            "label_information_bound": math.log(classes),
            "generative_log_loss": math.log(classes),
            "generative_accuracy": 1 / classes,
        }
    x, c = ctx.likelihood_images()
    per_class = likelihood.log_px_per_class(
        ctx.model,
        x,
        classes,
        ctx.eval.nll_k,
        lambda: ctx.generator("likelihood"),
        config.recon_loss,
        ctx.eval.batch_size,
    )
    return likelihood.label_information(per_class, c.cpu(), ctx.trained.bundle.class_names, RELIABILITY_BINS)


@metric_group(
    "completion",
    3,
    MetricSpec(
        "target_xent_iw",
        "image tasks, Bernoulli decoder: importance-weighted estimate (nll_k samples from q, the cell's prior, "
        "nll_size test images) of -log p(target pixels | visible pixels) in nats per image. On grey pixels "
        "this is a cross-entropy, not a normalised likelihood (Loaiza-Ganem & Cunningham 2019), the quantity "
        "Pyro's CVAE tutorial tables as -CLL; on binarised data it is the negative conditional log-likelihood",
        "lower",
        headline=True,
        unit="nats",
        depends_on=TASK_SUM,
        normalised="target_xent_per_pixel",
    ),
    MetricSpec(
        "target_xent_elbo",
        "the negative ELBO from the same samples: the bound Pyro's tutorial estimates for its CVAE row "
        "(Trace_ELBO); exact for the deterministic baseline, whose weights are all equal",
        "lower",
        unit="nats",
        depends_on=TASK_SUM,
        normalised="target_xent_per_pixel",
    ),
    MetricSpec(
        "target_xent_per_pixel",
        "target_xent_iw of each image divided by its number of target pixels (times channels), mean over the "
        "same images: nats per target pixel, the form comparable between tasks",
        "lower",
        unit="nats",
        depends_on=DENSITY_DATA,
    ),
    MetricSpec(
        "target_mse_mean",
        f"image tasks: mean squared error over target pixels of the mean of {COMPLETIONS} sampled completions, "
        "mean over recon_size test images",
        "lower",
        headline=True,
    ),
    MetricSpec(
        "target_mse_best",
        f"the same error for the best (lowest-error) of the {COMPLETIONS} completions of each image",
        "lower",
    ),
    MetricSpec(
        "ssim_mean",
        "SSIM (skimage default window) of the completed image from the mean completion, visible pixels as given",
        "higher",
        depends_on=GIVEN_PIXELS,
    ),
    MetricSpec(
        "ssim_best",
        f"SSIM of the best (highest-SSIM) of the {COMPLETIONS} completions",
        "higher",
        depends_on=GIVEN_PIXELS,
    ),
    MetricSpec(
        "diversity",
        f"mean over test images and pairs of their {COMPLETIONS} completions of the mean squared difference on "
        "target pixels: how different the sampled completions are (0 for a deterministic model)",
        "higher",
        headline=True,
    ),
)
def completion_metrics(ctx: EvalContext) -> dict:
    names = list(METRIC_GROUPS["completion"].names)
    if not ctx.model.image_condition:
        return ctx.unavailable(names, "not applicable: the condition is not an image task")
    generator = ctx.generator("completion")
    scores: dict[str, list] = {}
    for x, c in ctx.batches(ctx.recon_index):
        completions = torch.stack([ctx.model.sample(c, generator) for _ in range(COMPLETIONS)])
        for name, values in completion.completion_scores(completions, x, ctx.model.target_mask(c)).items():
            scores.setdefault(name, []).append(values)
    metrics = {name: float(np.concatenate(parts).mean()) for name, parts in scores.items()}
    if ctx.trained.config.recon_loss != "bce":
        return {**metrics, **ctx.unavailable(["target_xent_iw", "target_xent_elbo"], "the decoder is not a Bernoulli")}
    x, c = ctx.likelihood_images()
    generator = ctx.generator("likelihood")
    estimates = [
        likelihood.importance_estimate(ctx.model, xb, cb, ctx.eval.nll_k, generator, "bce")
        for xb, cb in zip(x.split(ctx.eval.batch_size), c.split(ctx.eval.batch_size))
    ]
    xent = -torch.cat([e.log_px for e in estimates])
    target_pixels = ctx.model.target_mask(c).sum((1, 2, 3)) * x.shape[1]
    return {
        **metrics,
        "target_xent_iw": xent.mean().item(),
        "target_xent_elbo": -torch.cat([e.mean_weight for e in estimates]).mean().item(),
        "target_xent_per_pixel": (xent / target_pixels.to(xent)).mean().item(),
    }


@metric_group(
    "cost",
    1,
    MetricSpec("parameters", "trainable parameters of the model", headline=True),
    MetricSpec(
        "flops_per_image",
        "floating-point operations of one training step per image, forward and backward "
        "(torch.utils.flop_counter: matmuls and convolutions)",
        headline=True,
    ),
)
def cost_metrics(ctx: EvalContext) -> dict:
    x, c = next(ctx.batches(ctx.recon_index[:16]))
    return {
        "parameters": parameter_count(ctx.model),
        "flops_per_image": training_flops_per_image(ctx.model, x, c, ctx.trained.config.recon_loss),
    }


def _real_features(bundle, image_size: int, extractor_key: str, compute, split: str = "test") -> np.ndarray:
    """Features of real images of a split, cached per (data set, split, size, extractor)."""
    variant = bundle.source.get("binarize", "none")
    path = paths.cache_dir() / "real_features" / f"{bundle.name}-{variant}-{split}-{image_size}-{extractor_key}.npy"
    if path.exists():
        return np.load(path)
    features = np.asarray(compute(), dtype=np.float64)
    atomic_write(path, lambda tmp: np.save(open(tmp, "wb"), features))
    return features


@dataclass
class Evaluation:
    metrics: dict
    images: dict[str, bytes]


def evaluate_cell(
    trained: TrainedCell, eval_config: EvalConfig, data_dir=None, groups: list[str] | None = None
) -> Evaluation:
    """Every metric group (or the named ones) under the current protocol, with the protocol recorded."""
    ctx = EvalContext(trained, eval_config, data_dir)
    trained.model.eval()
    metrics, timing, versions, definitions = {}, {}, {}, {}
    for name in groups or METRIC_GROUPS.names():
        group = METRIC_GROUPS[name]
        start = time.perf_counter()
        values = group.compute(ctx)
        unknown = set(values) - set(group.names)
        if unknown:
            raise RuntimeError(f"metric group {name!r} returned {sorted(unknown)} without a MetricSpec")
        metrics.update(values)
        timing[name] = round(time.perf_counter() - start, 3)
        versions[name] = group.version
        definitions.update({spec.name: spec.definition for spec in group.specs})
    settings = eval_config.model_dump(mode="json")
    metrics["protocol"] = {
        "version": protocol_version(settings, versions),
        "eval": settings,
        "groups": versions,
        "definitions": definitions,
        **ctx.notes,
        "conditions": trained.conditions.notes,
    }
    metrics["eval_seconds"] = timing
    return Evaluation(metrics, image_grids(ctx))


def image_grids(ctx: EvalContext, per_row: int = 10) -> dict[str, bytes]:
    """Reconstructions (originals above, reconstructions below) and samples: one row per class, or for an
    image task the visible inputs, five completions of each and the truth."""
    from torchvision.utils import make_grid

    x, c = next(ctx.batches(ctx.recon_index[:per_row]))
    recon = torch.cat([x, ctx.model.reconstruct(x, c)]).cpu()
    gen = ctx.generator("sample")
    classes = ctx.trained.conditions.source.num_classes
    if ctx.model.image_condition:
        samples = completion_grid(ctx.model, x, c, gen, 5).cpu()
    else:
        conds = (
            torch.arange(classes).repeat_interleave(per_row).to(ctx.device)
            if classes
            else ctx.trained.conditions.test[: per_row * 2].to(ctx.device)
        )
        samples = ctx.model.sample(conds, gen).cpu()
    return {
        "reconstructions": png_bytes(make_grid(recon, nrow=per_row, padding=1, pad_value=1.0)),
        "samples": png_bytes(make_grid(samples, nrow=per_row, padding=1, pad_value=1.0)),
    }


HIDDEN_SHADE = 0.5  # how hidden pixels of a visible input are drawn


def completion_grid(model, x: torch.Tensor, c: torch.Tensor, generator, completions: int) -> torch.Tensor:
    """Rows for an image task: the visible inputs (hidden pixels grey), `completions` sampled completions of
    each, and the truth; (rows * B, C, H, W)."""
    from benchmark.conditions.image_tasks import target_of, visible_of

    mask = target_of(c)
    shown = visible_of(c) * (1 - mask) + HIDDEN_SHADE * mask
    return torch.cat([shown, *(model.sample(c, generator) for _ in range(completions)), x])

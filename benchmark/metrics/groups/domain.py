"""The domain instrument: FID and KID in the domain classifier's features, and the conditional accuracy of samples."""

from __future__ import annotations

from benchmark.metrics.classifier import conditional_accuracy, domain_classifier, has_domain_classifier
from benchmark.metrics.context import EvalContext, real_features
from benchmark.metrics.dependence import (
    DOMAIN_INSTRUMENT,
)
from benchmark.metrics.frechet import GaussianStats, frechet_distance, kernel_distance
from benchmark.metrics.registry import MetricSpec, metric_group


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
        chance_without_condition=True,
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
    classifier = _classifier(ctx, names)
    if isinstance(classifier, dict):
        return classifier
    bundle = ctx.trained.bundle
    ctx.notes["domain_classifier"] = {"key": classifier.key, "test_accuracy": classifier.test_accuracy}
    ctx.notes["sampler"] = ctx.model.sampler
    real = _real_features(ctx, classifier)
    fid, kid, accuracy, per_class = _scores(ctx, classifier, real, ctx.samples)
    floor_images = bundle.train.images[: ctx.eval.n_samples]
    floor = real_features(
        bundle,
        bundle.image_size,
        f"{classifier.key}-train{len(floor_images)}",
        lambda: classifier.run(floor_images)[0],
        split="train",
    )
    return {
        "fid_domain": fid,
        "kid_domain": kid,
        "cond_acc": accuracy,
        "cond_acc_per_class": per_class,
        "fid_domain_floor": frechet_distance(GaussianStats.of(real), GaussianStats.of(floor)),
        "kid_domain_floor": kernel_distance(real, floor),
        "classifier_accuracy": classifier.test_accuracy,
    }


@metric_group(
    "unit_codes",
    1,
    MetricSpec(
        "fid_domain_unit_codes",
        "fid_domain of n_samples images decoded from codes drawn from N(0, I) instead of the model's sampler; "
        "for a model whose codes no KL term pulls towards N(0, I) (the autoencoder)",
        "lower",
        headline=True,
        depends_on=DOMAIN_INSTRUMENT,
        eval_settings=("n_samples",),
    ),
    MetricSpec(
        "cond_acc_unit_codes",
        "cond_acc of the same N(0, I)-code images",
        "higher",
        headline=True,
        depends_on=DOMAIN_INSTRUMENT,
        chance_without_condition=True,
    ),
)
def unit_code_metrics(ctx: EvalContext) -> dict:
    names = ["fid_domain_unit_codes", "cond_acc_unit_codes"]
    sample = getattr(ctx.model, "sample_unit_codes", None)
    if sample is None:
        return ctx.unavailable(names, f"model {ctx.trained.config.model} samples {ctx.model.sampler}: see fid_domain")
    classifier = _classifier(ctx, names)
    if isinstance(classifier, dict):
        return classifier
    fid, _, accuracy, _ = _scores(ctx, classifier, _real_features(ctx, classifier), ctx.generated(sample))
    return {"fid_domain_unit_codes": fid, "cond_acc_unit_codes": accuracy}


def _classifier(ctx: EvalContext, names: list[str]):
    """The data set's domain classifier, or the metrics unavailable with the reason."""
    bundle = ctx.trained.bundle
    if bundle.num_classes is None:
        return ctx.unavailable(names, f"not applicable: {bundle.name} has no domain classifier")
    if not has_domain_classifier(bundle.name):  # a data set registered without one (README: Extending)
        return ctx.unavailable(
            names, f"no domain classifier ships for {bundle.name}: bench instrument train --dataset {bundle.name}"
        )
    return domain_classifier(bundle.name, ctx.data_dir, ctx.device)


def _real_features(ctx: EvalContext, classifier):
    bundle = ctx.trained.bundle
    return real_features(bundle, bundle.image_size, classifier.key, lambda: classifier.run(bundle.test.images)[0])


def _scores(ctx: EvalContext, classifier, real, samples) -> tuple:
    """FID and KID of the samples against the real features, and their conditional accuracy (overall, per class)."""
    fake, predicted = classifier.run(samples)
    accuracy, per_class = conditional_accuracy(predicted, ctx.sample_labels, ctx.trained.bundle.class_names)
    fake = fake.numpy()
    return (
        frechet_distance(GaussianStats.of(real), GaussianStats.of(fake)),
        kernel_distance(real, fake),
        accuracy,
        per_class,
    )

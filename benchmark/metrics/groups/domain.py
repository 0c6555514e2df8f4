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
    if not has_domain_classifier(bundle.name):  # a data set registered without one (README: Extending)
        return ctx.unavailable(
            names, f"no domain classifier ships for {bundle.name}: bench instrument train --dataset {bundle.name}"
        )
    classifier = domain_classifier(bundle.name, ctx.data_dir, ctx.device)
    ctx.notes["domain_classifier"] = {"key": classifier.key, "test_accuracy": classifier.test_accuracy}
    real = real_features(bundle, bundle.image_size, classifier.key, lambda: classifier.run(bundle.test.images)[0])
    fake, predicted = classifier.run(ctx.samples)
    accuracy, per_class = conditional_accuracy(predicted, ctx.sample_labels, bundle.class_names)
    floor_images = bundle.train.images[: ctx.eval.n_samples]
    floor = real_features(
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

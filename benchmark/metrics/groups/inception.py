"""clean-fid's Inception FID and KID of the samples."""

from __future__ import annotations

from benchmark.metrics.context import EvalContext, real_features
from benchmark.metrics.dependence import (
    INCEPTION_REFERENCE,
)
from benchmark.metrics.frechet import GaussianStats, frechet_distance, kernel_distance
from benchmark.metrics.inception import InceptionExtractor, Unavailable
from benchmark.metrics.registry import MetricSpec, metric_group


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
    real = real_features(bundle, bundle.image_size, extractor.key, lambda: extractor.features(bundle.test.images))
    fake = extractor.features(ctx.samples)
    return {
        "fid_inception": frechet_distance(GaussianStats.of(real), GaussianStats.of(fake)),
        "kid_inception": kernel_distance(real, fake),
    }

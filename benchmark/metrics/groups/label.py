"""What the model takes from the label: its generative classifier p(y|x), its log-loss, accuracy and calibration."""

from __future__ import annotations

import math

from benchmark.metrics import likelihood
from benchmark.metrics.context import RELIABILITY_BINS, EvalContext
from benchmark.metrics.dependence import DENSITY, LABELS
from benchmark.metrics.registry import METRIC_GROUPS, MetricSpec, metric_group
from benchmark.models.loss import likelihood_case


def set_by_definition(classes: int) -> dict:
    """The label metrics of a model that ignores the label: set by definition, not measured (reports neither
    show nor compare them as measurements)."""
    return {"label_information": 0.0, "generative_log_loss": math.log(classes), "generative_accuracy": 1 / classes}


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
        chance_without_condition=True,
    ),
    MetricSpec("label_information_bound", "ln K, the most label_information can be", unit="nats"),
    MetricSpec(
        "generative_log_loss",
        "the generative classifier's mean -log p(y|x) on the real test pairs (ln K - label_information)",
        "lower",
        unit="nats",
        depends_on=LABELS,
        chance_without_condition=True,
    ),
    MetricSpec(
        "generative_accuracy",
        "accuracy of argmax_y p(x|y) as a classifier of the test images (ties shared); chance (1/K) by "
        "definition for conditioning none with the standard prior",
        "higher",
        headline=True,
        depends_on=LABELS,
        chance_without_condition=True,
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
    if hasattr(ctx.model, "neg_elbo"):
        return ctx.unavailable(
            names, f"model {config.model}: its p(x|y) is a one-hot-posterior bound, not an importance-sampled estimate"
        )
    if not ctx.model.uses_condition:
        ctx.notes["label"] = (
            "conditioning none with the standard prior ignores the label: information 0 and chance accuracy "
            "by definition"
        )
        return {**dict.fromkeys(names), "label_information_bound": math.log(classes), **set_by_definition(classes)}
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

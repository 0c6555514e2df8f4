"""Calibration of a classifier's probabilities: reliability bins and the expected calibration error
(Guo, Pleiss, Sun & Weinberger 2017, "On Calibration of Modern Neural Networks", section 2)."""

from __future__ import annotations

import torch


def reliability(probabilities: torch.Tensor, labels: torch.Tensor, bins: int) -> list[list[float]]:
    """Per equal-width bin of the confidence max_y p(y|x) over (0, 1]: [mean confidence, accuracy of the
    argmax, number of images]; (N, K) probabilities, N labels. Empty bins are [nan, nan, 0]. A tie for the
    argmax is shared among the tied classes (as in generative_accuracy): a model that ignores the label
    ties all K classes and scores 1/K on every image, whatever class the first index happens to be."""
    confidence = probabilities.max(1).values
    tied = probabilities == confidence[:, None]
    correct = tied[torch.arange(len(labels)), labels].double() / tied.sum(1)
    # bin b holds confidences in (b/bins, (b+1)/bins]; a confidence of exactly 0 cannot occur (max over K >= 1)
    which = (confidence.double() * bins).ceil().long().clamp(1, bins) - 1
    rows = []
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        if count:
            rows.append([confidence[inside].double().mean().item(), correct[inside].mean().item(), count])
        else:
            rows.append([float("nan"), float("nan"), 0])
    return rows


def expected_calibration_error(rows: list[list[float]]) -> float:
    """sum over bins of (images in bin / images) * |accuracy - mean confidence|, from `reliability` rows."""
    total = sum(count for _, _, count in rows)
    return sum(count / total * abs(accuracy - confidence) for confidence, accuracy, count in rows if count)

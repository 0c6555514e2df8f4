"""Metrics: each defined once (see protocol.METRIC_DEFINITIONS), computed by evaluate.evaluate_cell."""

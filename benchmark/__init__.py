"""CVAE Bench: a reproducible benchmark for conditional VAEs."""

__version__ = "0.1.0"

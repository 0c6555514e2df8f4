"""The CVAE family: a backbone (encoder + decoder) composed with a conditioning mode."""

from benchmark.models.cvae import CVAE, build_model

__all__ = ["CVAE", "build_model"]

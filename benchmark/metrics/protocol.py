"""The evaluation protocol's settings: every setting that changes a metric.

They are stored with each cell's metrics, with every metric's definition (metrics/registry.py) and the
protocol version, and printed in every report, so a number never travels without its protocol.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    split: str = Field(default="test", pattern="^test$")
    recon_size: int | None = Field(default=None, gt=0)  # test images for reconstruction; None = all
    n_samples: int = Field(default=10_000, gt=0, le=1_000_000)  # generated images for FID / KID / cond_acc
    nll_size: int | None = Field(default=500, gt=0)  # test images for the likelihood metrics; None = all
    nll_k: int = Field(default=100, gt=0, le=100_000)  # importance samples per image
    batch_size: int = Field(default=500, gt=0, le=65_536)
    inception: bool = True  # Inception FID / KID via clean-fid when its weights are present
    inception_weights: str | None = None  # path; None = clean-fid's default place

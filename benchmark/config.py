"""The resolved configuration of one cell: every field that changes its result.

A cell's id is a short hash of this config's canonical JSON, so the same cell
in two grids is the same cell. Fields that only change *where* it runs (device,
results folder) are not part of it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class CellConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: Literal["fashion_mnist", "mnist", "coco"] = "fashion_mnist"
    train_size: int | None = Field(default=None, gt=0)
    image_size: Literal[28, 32, 64, 128, 256] = 28
    condition: Literal["label", "keyword", "text"] = "label"
    backbone: Literal["mlp", "conv", "article-conv", "article-coco", "tutorial-mlp"] = "conv"
    conditioning: Literal["none", "concat", "additive", "film"] = "concat"
    latent_dim: int = Field(default=16, gt=0)
    beta: float = Field(default=1.0, ge=0)
    recon_loss: Literal["bce", "mse"] = "bce"
    epochs: int = Field(default=5, gt=0)
    batch_size: int = Field(default=128, gt=0)
    lr: float = Field(default=1e-3, gt=0)
    seed: int = Field(default=0, ge=0)
    kl_warmup_epochs: int = Field(default=0, ge=0)
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast on CUDA (and on CPU when asked)
    embed_dim: int = Field(default=32, gt=0)  # size of the learned label embedding
    hidden: tuple[int, ...] = (512, 256)  # MLP backbone widths
    base_channels: int = Field(default=32, gt=0)  # conv backbone: channels of the first block
    batchnorm: bool = False  # conv backbone
    text_encoder: str | None = None  # condition "text": open_clip MODEL[:TAG|:FILE], see conditions/clip_text.py
    text_normalize: bool = True  # L2-normalise sentence embeddings and their mean

    @model_validator(mode="after")
    def _consistent(self) -> CellConfig:
        from benchmark.models.backbones import BACKBONES

        entry = BACKBONES[self.backbone]
        entry.check(self)
        if self.dataset == "coco" and self.condition != "text":
            raise ValueError(f"data set coco has captions only: condition must be 'text', not {self.condition!r}")
        if self.dataset != "coco" and self.condition == "text":
            raise ValueError(f"data set {self.dataset} has no captions: condition must be 'label' or 'keyword'")
        if self.condition == "text" and not self.text_encoder:
            raise ValueError(
                "condition 'text' needs text_encoder, e.g. 'ViT-B-32:openai', 'ViT-B-32:/path/to/file.pt', "
                "or 'cvae-tiny-clip' (an untrained stand-in)"
            )
        return self

    @property
    def channels(self) -> int:
        return 3 if self.dataset == "coco" else 1

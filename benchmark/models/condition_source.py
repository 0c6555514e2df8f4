"""How a raw condition becomes a vector: class index -> learned embedding, an external vector (a text
embedding), or an image (the visible part of an image task) -> a small encoder's features."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

IMAGE_FEATURES = 128  # an image condition's width where a mechanism takes the condition raw (concat_input)
IMAGE_HIDDEN = 256  # hidden width of the MLP condition encoder


class OneHot(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return F.one_hot(c, self.num_classes).float()


class ImageConditionEncoder(nn.Module):
    """A condition image (uint8, visible pixels and the target mask as channels) -> out_dim features: an MLP
    (one ReLU layer) for MLP backbones, two stride-2 convolutions for conv ones. `weight` and `bias` are
    the output layer's, so mechanisms that zero-initialise their generator (FiLM) can."""

    def __init__(self, shape: tuple[int, int, int], out_dim: int, flat: bool):
        super().__init__()
        channels, size, _ = shape
        if flat:
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), IMAGE_HIDDEN), nn.ReLU())
            width = IMAGE_HIDDEN
        else:
            self.body = nn.Sequential(
                nn.Conv2d(channels, 32, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Conv2d(32, 64, 3, stride=2, padding=1),
                nn.ReLU(),
                nn.Flatten(),
            )
            width = 64 * math.ceil(math.ceil(size / 2) / 2) ** 2
        self.out = nn.Linear(width, out_dim)

    @property
    def weight(self) -> torch.Tensor:
        return self.out.weight

    @property
    def bias(self) -> torch.Tensor:
        return self.out.bias

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(c.float() / 255))


@dataclass(frozen=True)
class ConditionSource:
    """A class index (num_classes), an external vector of size vector_dim (a text embedding), or a
    condition image of image_shape (C + 1, H, W) encoded as its backbone is (flat: MLP)."""

    num_classes: int | None = None
    vector_dim: int | None = None
    image_shape: tuple[int, int, int] | None = None
    flat: bool = False

    def embedding(self, out_dim: int | None) -> nn.Module:
        """A module mapping the raw condition to out_dim features; None keeps it raw (one-hot / as is; an
        image condition has no raw vector form, so it is encoded to IMAGE_FEATURES)."""
        if self.image_shape is not None:
            return ImageConditionEncoder(self.image_shape, out_dim or IMAGE_FEATURES, self.flat)
        if self.num_classes is not None:
            return nn.Embedding(self.num_classes, out_dim) if out_dim else OneHot(self.num_classes)
        return nn.Linear(self.vector_dim, out_dim) if out_dim else nn.Identity()

    def width(self, out_dim: int | None) -> int:
        if self.image_shape is not None:
            return out_dim or IMAGE_FEATURES
        return out_dim or self.num_classes or self.vector_dim

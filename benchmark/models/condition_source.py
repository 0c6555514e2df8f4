"""How a raw condition becomes a vector: class index -> learned embedding, or an external vector."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


class OneHot(nn.Module):
    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = num_classes

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return F.one_hot(c, self.num_classes).float()


@dataclass(frozen=True)
class ConditionSource:
    """A class index (num_classes) or an external vector of size vector_dim, such as a text embedding."""

    num_classes: int | None = None
    vector_dim: int | None = None

    def embedding(self, out_dim: int | None) -> nn.Module:
        """A module mapping the raw condition to out_dim features; None keeps it raw (one-hot / as is)."""
        if self.num_classes is not None:
            return nn.Embedding(self.num_classes, out_dim) if out_dim else OneHot(self.num_classes)
        return nn.Linear(self.vector_dim, out_dim) if out_dim else nn.Identity()

    def width(self, out_dim: int | None) -> int:
        return out_dim or self.num_classes or self.vector_dim

"""Image resizing shared by every data set.

Interpolation: bilinear with antialiasing (torchvision transforms v2) on uint8
tensors; images are resized so their shorter side equals the target size, then
centre-cropped to a square. For square 28x28 data sets that is a plain resize.
"""

from __future__ import annotations

import torch

INTERPOLATION = "bilinear, antialias=True (torchvision.transforms.v2), then centre crop"
RESIZE_CHUNK = 4096  # bounds peak memory when resizing 60,000 images to 256x256


def resize_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) uint8 -> (N, C, size, size) uint8."""
    if images.shape[-2:] == (size, size):
        return images.contiguous()
    from torchvision.transforms import InterpolationMode  # torchvision costs seconds to import: only here
    from torchvision.transforms.v2 import functional as TF

    chunks = [
        TF.center_crop(
            TF.resize(chunk, size, interpolation=InterpolationMode.BILINEAR, antialias=True),
            [size, size],
        )
        for chunk in images.split(RESIZE_CHUNK)
    ]
    return torch.cat(chunks).contiguous()

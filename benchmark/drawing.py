"""Every image a cell is drawn as: grids of reconstructions, samples and completions, latent
interpolations, and the PNG encoding and on-screen enlargement they share."""

from __future__ import annotations

import io
import math

import torch
from torchvision.utils import make_grid

from benchmark.conditions.image_tasks import target_of, visible_of
from benchmark.models.loss import decoder_mean

HIDDEN_SHADE = 0.5  # how hidden pixels of a visible input are drawn
DISPLAY_PIXELS = 112  # an image is shown at least this wide on screen: 28 px images at 4x, 64 px at 2x


def png_bytes(image) -> bytes:
    """A (C, H, W) float tensor in [0, 1] -> PNG bytes."""
    from torchvision.utils import save_image

    buffer = io.BytesIO()
    save_image(image, buffer, format="png")
    return buffer.getvalue()


def grid_png(images: torch.Tensor, per_row: int) -> bytes:
    """(N, C, H, W) images in [0, 1] as one PNG grid, per_row to a row, 1 px white between them."""
    return png_bytes(make_grid(images, nrow=per_row, padding=1, pad_value=1.0))


def display_scale(image_size: int) -> int:
    """The integer upscaling that shows an image of this size at least DISPLAY_PIXELS wide."""
    return max(1, math.ceil(DISPLAY_PIXELS / image_size))


def upscaled_png(data: bytes, scale: int) -> bytes:
    """A PNG enlarged by an integer factor, nearest neighbour (every pixel a scale x scale block)."""
    if scale == 1:
        return data
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        big = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
        buffer = io.BytesIO()
        big.save(buffer, format="png")
    return buffer.getvalue()


def completion_grid(model, x: torch.Tensor, c: torch.Tensor, generator, completions: int) -> torch.Tensor:
    """Rows for an image task: the visible inputs (hidden pixels grey), `completions` sampled completions of
    each, and the truth; (rows * B, C, H, W)."""
    mask = target_of(c)
    shown = visible_of(c) * (1 - mask) + HIDDEN_SHADE * mask
    return torch.cat([shown, *(model.sample(c, generator) for _ in range(completions)), x])


@torch.no_grad()
def interpolation_png(model, images: torch.Tensor, conditions: torch.Tensor, steps: int = 10) -> bytes:
    """Rows of images decoded from z moving linearly between the posterior means of the test images 0 and 1,
    2 and 3, 4 and 5 (uint8 `images`); the condition is held at the first image's of each pair."""
    rows = []
    for first, second in ((0, 1), (2, 3), (4, 5)):
        x = images[[first, second]].float() / 255
        c = conditions[[first, second]]
        mu, _ = model.encode(x, c)
        weights = torch.linspace(0, 1, steps).unsqueeze(1)
        z = (1 - weights) * mu[0] + weights * mu[1]
        logits = model.decode_logits(z, c[:1].expand(steps, *c.shape[1:]))
        rows.append(decoder_mean(logits, model.recon_loss))  # the continuous Bernoulli's mean is not sigmoid
    return grid_png(torch.cat(rows), steps)

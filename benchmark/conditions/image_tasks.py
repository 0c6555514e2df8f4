"""Image conditions: a task turns each image into what the model is given (the visible input) and which
pixels it must produce (the target), the structured output prediction of Sohn, Lee & Yan (2015).

A cell names its task as NAME:ARGUMENT (`quadrants:1`, `inpaint:14`, `superres:2`). The condition the
model sees is one uint8 image with C + 1 channels: the visible pixels (hidden ones set to 0) and a
mask channel, 255 where a pixel is a target.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from benchmark.config import parse_task
from benchmark.registry import IMAGE_TASKS

# A task maps (uint8 images (N, C, H, W), a generator for tasks that draw) to (visible uint8 (N, C, H, W),
# target bool (N, 1, H, W)).
Task = Callable[[torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class TaskFamily:
    build: Callable[[int], Task]  # the task for one argument
    arguments: str  # what the argument may be, for errors
    valid: Callable[[int, int], bool]  # (argument, image size) -> allowed


def quadrant_target(visible_quadrants: int, size: int) -> torch.Tensor:
    """Pyro's layout of Sohn et al.'s task: 1 visible quadrant = bottom left; 2 = the left half; 3 = all but
    the bottom right. The target is the rest, (1, 1, H, W) bool."""
    half = size // 2
    visible = torch.zeros(size, size, dtype=torch.bool)
    visible[half:, :half] = True
    if visible_quadrants >= 2:
        visible[:, :half] = True
    if visible_quadrants == 3:
        visible[:half, :] = True
    return ~visible[None, None]


def _quadrants(visible_quadrants: int) -> Task:
    def task(images, generator):
        target = quadrant_target(visible_quadrants, images.shape[-1]).expand(len(images), -1, -1, -1)
        return images * ~target, target

    return task


def _inpaint(box: int) -> Task:
    """A box x box square hidden at a position drawn for each image."""

    def task(images, generator):
        n, size = len(images), images.shape[-1]
        corners = torch.randint(0, size - box + 1, (n, 2), generator=generator)
        rows, cols = torch.arange(size)[None, :, None], torch.arange(size)[None, None, :]
        top, left = corners[:, 0, None, None], corners[:, 1, None, None]
        target = ((rows >= top) & (rows < top + box) & (cols >= left) & (cols < left + box))[:, None]
        return images * ~target, target

    return task


def _superres(factor: int) -> Task:
    """The image averaged over factor x factor blocks and enlarged back (nearest): every pixel is a target."""

    def task(images, generator):
        low = F.avg_pool2d(images.float(), factor)
        visible = F.interpolate(low, scale_factor=factor, mode="nearest").round().to(torch.uint8)
        target = torch.ones(len(images), 1, *images.shape[2:], dtype=torch.bool)
        return visible, target

    return task


IMAGE_TASKS.register("quadrants")(TaskFamily(_quadrants, "1, 2 or 3 visible quadrants", lambda n, s: n in (1, 2, 3)))
IMAGE_TASKS.register("inpaint")(TaskFamily(_inpaint, "a box side from 1 to the image size - 1", lambda n, s: 0 < n < s))
IMAGE_TASKS.register("superres")(
    TaskFamily(_superres, "a factor of 2 or 4 that divides the image size", lambda n, s: n in (2, 4) and s % n == 0)
)


def task_condition(text: str, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The condition images of a task: visible pixels and the target mask (255) as a last channel, uint8."""
    name, argument = parse_task(text, images.shape[-1])
    visible, target = IMAGE_TASKS[name].build(argument)(images, generator)
    return torch.cat([visible, target.to(torch.uint8) * 255], 1)


def target_of(condition: torch.Tensor) -> torch.Tensor:
    """The target mask of condition images, float (N, 1, H, W): 1 where the model must produce the pixel."""
    return (condition[:, -1:] > 127).float()


def visible_of(condition: torch.Tensor) -> torch.Tensor:
    """The visible pixels of condition images in [0, 1], (N, C, H, W)."""
    return condition[:, :-1].float() / 255

"""Every random stream of a cell, in one table.

A cell draws each kind of randomness from a generator of its own, seeded from the cell's seed and the
stream's id, so that changing one (say, how many test images are sampled) leaves every other draw as it
was. Two streams with one id would draw the same numbers: the ids are distinct by construction (checked
below, at import).
"""

from __future__ import annotations

import torch

STREAMS = {
    "init": 0,  # the model's initial weights
    "order": 1,  # the order of the training images in each epoch
    "noise": 2,  # the reparameterisation noise of training
    "sample": 3,  # evaluation: the latents of the generated samples
    "likelihood": 4,  # evaluation: importance samples of the likelihood estimates
    "subset": 5,  # evaluation: which test images a metric reads
    "binarize": 6,  # dynamic binarisation of the training images
    "task": 7,  # image tasks: where the training images' inpainting boxes go
    # the validation split's noise, and with seed 0 its one binarisation draw: a seed-0 cell seeds both from
    # 8 (different kinds of draws, so no result depends on it); kept, as it fixes the published cells' images
    "validation": 8,
    "completion": 9,  # evaluation: the latents of image-task completions
    "second_stage": 10,  # a model's second stage after training: the conditions it reads (a text cell's captions)
    "code_prior": 11,  # the VQ-VAE's code prior: the order of its training batches
}
if len(set(STREAMS.values())) != len(STREAMS):
    raise RuntimeError(f"two random streams share an id: {STREAMS}")


def stream_seed(seed: int, stream: str) -> int:
    """The seed of a cell's stream: distinct for every (seed, stream) pair while there are fewer than 1000
    streams."""
    return seed * 1000 + STREAMS[stream]


def stream_generator(seed: int, stream: str, device: torch.device | str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(stream_seed(seed, stream))

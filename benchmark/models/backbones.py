"""Backbones: encoder x -> features and decoder v -> logits, registered by name.

The generic `mlp` and `conv` backbones take their size from the config; the
presets `article-conv`, `article-coco` and `tutorial-mlp` reproduce published
layer lists exactly. Every hidden block ends in a FiLM site, so any conditioning
mode can plug into any backbone that allows it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from benchmark.config import IMAGE_SIZES
from benchmark.registry import BACKBONES, CONDITIONINGS

Modulate = Callable[[int, torch.Tensor], torch.Tensor]  # (FiLM site, activations) -> activations


def _out_channels(layer: nn.Module) -> int:
    return layer.out_channels if hasattr(layer, "out_channels") else layer.out_features


def _norm(layer: nn.Module) -> nn.Module:
    return nn.BatchNorm2d(layer.out_channels) if hasattr(layer, "out_channels") else nn.BatchNorm1d(layer.out_features)


class FilmBlocks(nn.Module):
    """Layers, each followed by optional BatchNorm, a FiLM site and ReLU."""

    def __init__(self, layers: Sequence[nn.Module], batchnorm: bool, first_site: int = 0):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norms = nn.ModuleList(_norm(layer) if batchnorm else nn.Identity() for layer in layers)
        self.first_site = first_site
        self.channels = tuple(_out_channels(layer) for layer in layers)

    def forward(self, h: torch.Tensor, modulate: Modulate) -> torch.Tensor:
        for i, (layer, norm) in enumerate(zip(self.layers, self.norms)):
            h = F.relu(modulate(self.first_site + i, norm(layer(h))))
        return h


class Encoder(nn.Module):
    def __init__(self, blocks: FilmBlocks, flat_input: bool):
        super().__init__()
        self.blocks = blocks
        self.flat_input = flat_input

    def forward(self, x: torch.Tensor, modulate: Modulate) -> torch.Tensor:
        h = x.flatten(1) if self.flat_input else x
        return self.blocks(h, modulate).flatten(1)


class Decoder(nn.Module):
    """Reshape the decoder input to `shape` (a FiLM site), hidden blocks, then an output head.

    The input layer itself (z and condition -> `shape`) belongs to the CVAE, because its width
    depends on the conditioning mode.
    """

    def __init__(self, shape, blocks: FilmBlocks, head: nn.Module, out_shape, input_relu: bool = True):
        super().__init__()
        self.blocks, self.head = blocks, head
        self.input_relu = input_relu
        self.shape, self.out_shape = tuple(shape), tuple(out_shape)

    @property
    def input_width(self) -> int:
        return math.prod(self.shape)

    @property
    def film_channels(self) -> tuple[int, ...]:
        return (self.shape[0],) + self.blocks.channels

    def forward(self, h: torch.Tensor, modulate: Modulate) -> torch.Tensor:
        h = modulate(0, h.view(-1, *self.shape))
        h = F.relu(h) if self.input_relu else h
        return self.head(self.blocks(h, modulate)).view(-1, *self.out_shape)


@dataclass
class Architecture:
    """What a backbone is built for: the cell's sizes plus what the conditioning adds."""

    image_size: int
    channels: int
    hidden: tuple[int, ...] = (512, 256)
    base_channels: int = 32
    batchnorm: bool = False
    width_scale: float = 1.0  # every hidden width times this, rounded (grids' match_params sets it)
    input_extra: int = 0  # what the conditioning adds to the input: features (flat input) or channels (conv)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.image_size, self.image_size)

    def scaled(self, width: int) -> int:
        return max(1, round(width * self.width_scale))


@dataclass
class BackbonePreset:
    """A backbone and what it supports; None means everything registered (every image size, every mode)."""

    build_encoder: Callable[[Architecture], Encoder]
    build_decoder: Callable[[Architecture], Decoder]
    image_sizes: tuple[int, ...] | None = None
    channels: tuple[int, ...] = (1, 3)
    conditionings: tuple[str, ...] | None = None
    conditioning_options: dict = field(default_factory=dict)
    ignores: tuple[str, ...] = ()  # cell fields that do not change this backbone (reset, so one model has one id)
    builtin_batchnorm: bool = False  # BatchNorm whatever `batchnorm` says (keeps per-call state: cannot be packed)
    flat_input: bool = False  # an MLP (image flattened) rather than convolutions; image conditions follow it

    def check(self, config) -> None:
        """Raise ValueError (pydantic turns it into a validation error) for an unsupported cell."""
        for key, value, allowed in (
            ("image_size", config.image_size, self.image_sizes or IMAGE_SIZES),
            ("conditioning", config.conditioning, self.conditionings or tuple(CONDITIONINGS.names())),
            ("channels", config.channels, self.channels),
        ):
            if value not in allowed:
                raise ValueError(
                    f"backbone {config.backbone!r} does not support {key} {value!r}; "
                    f"valid: {', '.join(map(str, allowed))}"
                )


# --- generic MLP -------------------------------------------------------------------------------


def _mlp_encoder(arch: Architecture) -> Encoder:
    widths = (math.prod(arch.out_shape) + arch.input_extra, *map(arch.scaled, arch.hidden))
    layers = [nn.Linear(a, b) for a, b in zip(widths, widths[1:])]
    return Encoder(FilmBlocks(layers, arch.batchnorm), flat_input=True)


def _mlp_decoder(arch: Architecture) -> Decoder:
    widths = tuple(reversed(tuple(map(arch.scaled, arch.hidden))))
    layers = [nn.Linear(a, b) for a, b in zip(widths, widths[1:])]
    return Decoder(
        (widths[0],),
        FilmBlocks(layers, arch.batchnorm, first_site=1),
        nn.Linear(widths[-1], math.prod(arch.out_shape)),
        arch.out_shape,
    )


BACKBONES.register("mlp")(BackbonePreset(_mlp_encoder, _mlp_decoder, ignores=("base_channels",), flat_input=True))


# --- generic conv: stride-2 blocks down to 4x4, depth follows the image size ----------------------


def conv_spatial_sizes(image_size: int) -> list[int]:
    """Spatial size after each stride-2 block (k3, s2, p1): 28 -> [28, 14, 7, 4]."""
    sizes = [image_size]
    while sizes[-1] > 4:
        sizes.append(math.ceil(sizes[-1] / 2))
    return sizes


def _conv_widths(arch: Architecture) -> list[int]:
    depth = len(conv_spatial_sizes(arch.image_size)) - 1
    return [min(arch.scaled(arch.base_channels * 2**i), 512) for i in range(depth)]


def _conv_encoder(arch: Architecture) -> Encoder:
    widths = [arch.channels + arch.input_extra, *_conv_widths(arch)]
    layers = [nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(widths, widths[1:])]
    return Encoder(FilmBlocks(layers, arch.batchnorm), flat_input=False)


def _up(in_ch: int, out_ch: int, in_size: int, out_size: int) -> nn.ConvTranspose2d:
    """Transposed conv (k3, s2, p1) from in_size to exactly out_size (2*in - 1 + output_padding)."""
    return nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=out_size - (2 * in_size - 1))


def _conv_decoder(arch: Architecture) -> Decoder:
    sizes, widths = conv_spatial_sizes(arch.image_size), _conv_widths(arch)
    n = len(widths)
    layers = [_up(widths[k], widths[k - 1], sizes[k + 1], sizes[k]) for k in range(n - 1, 0, -1)]
    return Decoder(
        (widths[-1], 4, 4),
        FilmBlocks(layers, arch.batchnorm, first_site=1),
        _up(widths[0], arch.channels, sizes[1], sizes[0]),
        arch.out_shape,
    )


BACKBONES.register("conv")(BackbonePreset(_conv_encoder, _conv_decoder, ignores=("hidden",)))


# --- presets: published architectures, layer for layer -----------------------------------------


def _article_conv_encoder(arch: Architecture) -> Encoder:
    widths = (1, 32, 64, 128)
    layers = [nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(widths, widths[1:])]
    return Encoder(FilmBlocks(layers, batchnorm=False), flat_input=False)  # 128x4x4 = 2048


def _article_conv_decoder(arch: Architecture) -> Decoder:
    layers = [
        nn.ConvTranspose2d(128, 64, 2, stride=2, padding=1, output_padding=1),  # 4 -> 7
        nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1),  # 7 -> 14
    ]
    head = nn.ConvTranspose2d(32, 1, 3, stride=2, padding=1, output_padding=1)  # 14 -> 28
    # The write-up puts ReLU between the transposed convs only, not after the input Linear.
    return Decoder((128, 4, 4), FilmBlocks(layers, False, 1), head, arch.out_shape, input_relu=False)


BACKBONES.register("article-conv")(
    BackbonePreset(
        _article_conv_encoder,
        _article_conv_decoder,
        image_sizes=(28,),
        channels=(1,),
        conditionings=("none", "concat", "additive"),
        ignores=("hidden", "base_channels", "batchnorm", "width_scale"),
    )
)


def _article_coco_encoder(arch: Architecture) -> Encoder:
    widths = (3, 32, 64, 128, 256, 512)
    layers = [nn.Conv2d(a, b, 4, stride=2, padding=1) for a, b in zip(widths, widths[1:])]
    return Encoder(FilmBlocks(layers, batchnorm=True), flat_input=False)  # 512x4x4 = 8192


def _article_coco_decoder(arch: Architecture) -> Decoder:
    widths = (512, 256, 128, 64, 32, 16)
    layers = [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1) for a, b in zip(widths, widths[1:])]
    return Decoder(
        (512, 4, 4),
        FilmBlocks(layers, batchnorm=True, first_site=1),
        nn.Conv2d(16, 3, 3, padding=1),
        arch.out_shape,
        input_relu=False,
    )


BACKBONES.register("article-coco")(
    BackbonePreset(
        _article_coco_encoder,
        _article_coco_decoder,
        image_sizes=(128,),
        channels=(3,),
        conditionings=("concat",),
        # the 512-d text embedding goes through Linear(512, 1024) for the encoder, raw to the decoder
        conditioning_options={"encoder_embed": 1024, "decoder_embed": None},
        ignores=("hidden", "base_channels", "batchnorm", "embed_dim", "width_scale"),
        builtin_batchnorm=True,
    )
)


def _tutorial_mlp_encoder(arch: Architecture) -> Encoder:
    return Encoder(FilmBlocks([nn.Linear(784 + arch.input_extra, 400)], False), flat_input=True)


def _tutorial_mlp_decoder(arch: Architecture) -> Decoder:
    return Decoder((400,), FilmBlocks([], False, 1), nn.Linear(400, 784), arch.out_shape)


BACKBONES.register("tutorial-mlp")(
    BackbonePreset(
        _tutorial_mlp_encoder,
        _tutorial_mlp_decoder,
        image_sizes=(28,),
        channels=(1,),
        conditionings=("concat",),
        # one-hot label concatenated to the flattened pixels and to z
        conditioning_options={"at_input": True, "encoder_embed": None},
        ignores=("hidden", "base_channels", "batchnorm", "embed_dim", "width_scale"),
        flat_input=True,
    )
)

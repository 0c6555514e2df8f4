"""Conditioning modes: how the condition vector enters the encoder q(z|x,c) and decoder p(x|z,c).

Each mode is a module with four hooks that the CVAE calls at fixed places;
the defaults do nothing, so `none` is the plain VAE baseline.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import nn
from torch.nn import functional as F

from benchmark.models.condition_source import ConditionSource
from benchmark.registry import CONDITIONINGS


@dataclass(frozen=True)
class ConditioningContext:
    """What a conditioning mode needs to know about the networks it plugs into."""

    source: ConditionSource
    feature_dim: int  # encoder output width, before the mu / log-variance heads
    latent_dim: int
    encoder_film: tuple[int, ...]  # channel count at each FiLM site of the encoder
    decoder_film: tuple[int, ...]
    embed_dim: int
    options: dict = field(default_factory=dict)  # preset-specific overrides


class Conditioning(nn.Module):
    input_extra = 0  # extra encoder input features (concatenated to the flattened image)
    feature_extra = 0  # extra width of the features that reach the mu / log-variance heads
    latent_extra = 0  # extra width of the decoder input

    def encoder_input(self, x_flat: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return x_flat

    def features(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return h

    def latent(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return z

    def modulate(self, side: str, site: int, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return h


NORM_EPS = 1e-5  # of instance and layer norm (PyTorch's default)


@CONDITIONINGS.register("none")
def no_conditioning(ctx: ConditioningContext) -> Conditioning:
    """The condition does not enter the encoder or the decoder: the plain VAE (Kingma & Welling 2014), or,
    with the conditional prior, a model whose only condition is p(z|c)."""
    return Conditioning()


no_conditioning.ignores = ("embed_dim",)  # cell fields this mode does not use (reset: one model, one id)


class Concat(Conditioning):
    """A learned embedding of c concatenated to the encoder's features and to z (the CVAE of Kingma et al.
    2014, M2, with the label embedded rather than one-hot).

    One embedding serves both sides unless a preset gives each side its own width
    (`encoder_embed`, `decoder_embed`; None there means the raw condition).
    """

    def __init__(self, ctx: ConditioningContext):
        super().__init__()
        opts = ctx.options
        enc_dim = opts.get("encoder_embed", ctx.embed_dim)
        dec_dim = opts.get("decoder_embed", enc_dim)
        self.at_input = opts.get("at_input", False)
        self.encoder_embed = ctx.source.embedding(enc_dim)
        self.decoder_embed = self.encoder_embed if dec_dim == enc_dim else ctx.source.embedding(dec_dim)
        width = ctx.source.width(enc_dim)
        self.input_extra, self.feature_extra = (width, 0) if self.at_input else (0, width)
        self.latent_extra = ctx.source.width(dec_dim)

    @staticmethod
    def input_width(source: ConditionSource, options: dict, embed_dim: int) -> int:
        """Width added to the flattened input when a preset concatenates c there (tutorial-mlp)."""
        return source.width(options.get("encoder_embed", embed_dim)) if options.get("at_input") else 0

    def encoder_input(self, x, c):
        """Flat input: c's vector after the pixels. Image input (conv): c's vector as constant extra channels."""
        if not self.at_input:
            return x
        e = self.encoder_embed(c)
        if x.dim() == 4:
            return torch.cat([x, e[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)
        return torch.cat([x.flatten(1), e], 1)

    def features(self, h, c):
        return h if self.at_input else torch.cat([h, self.encoder_embed(c)], 1)

    def latent(self, z, c):
        return torch.cat([z, self.decoder_embed(c)], 1)


class Additive(Conditioning):
    """Learned embeddings of c, sized to match, added to the encoder's features and to z (the condition as
    a learned bias, as class embeddings are added in e.g. Miyato & Koyama 2018's projection baseline)."""

    ignores = ("embed_dim",)  # its embeddings take the widths of what they are added to

    def __init__(self, ctx: ConditioningContext):
        super().__init__()
        self.feature_embed = ctx.source.embedding(ctx.feature_dim)
        self.latent_embed = ctx.source.embedding(ctx.latent_dim)

    def features(self, h, c):
        return h + self.feature_embed(c)

    def latent(self, z, c):
        return z + self.latent_embed(c)


class FiLM(Conditioning):
    """c produces a per-channel scale and shift of the (unnormalised) activations at every hidden block of
    both networks (Perez et al. 2018, FiLM).

    The generators start at zero, so training begins from the unconditioned network
    and h * (1 + gamma) + beta moves away from the identity as it learns.
    """

    ignores = ("embed_dim",)  # its generators take the widths of the channels they modulate

    def __init__(self, ctx: ConditioningContext):
        super().__init__()
        self.generators = nn.ModuleDict(
            {
                side: nn.ModuleList(self._generator(ctx.source, 2 * ch) for ch in channels)
                for side, channels in (("encoder", ctx.encoder_film), ("decoder", ctx.decoder_film))
            }
        )

    @staticmethod
    def _generator(source: ConditionSource, width: int) -> nn.Module:
        module = source.embedding(width)
        nn.init.zeros_(module.weight)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
        return module

    def modulate(self, side, site, h, c):
        gamma, beta = self.generators[side][site](c).chunk(2, dim=1)
        shape = (h.shape[0], -1) + (1,) * (h.dim() - 2)
        return self.normalized(h) * (1 + gamma.view(shape)) + beta.view(shape)

    @staticmethod
    def normalized(h: torch.Tensor) -> torch.Tensor:
        return h


class AdaIN(FiLM):
    """c produces a per-channel scale and shift of *normalised* activations at every hidden block of both
    networks: instance norm for feature maps, layer norm for MLP features (adaptive instance normalisation,
    Huang & Belongie 2017, as style-based generators use it, Karras et al. 2019)."""

    @staticmethod
    def normalized(h: torch.Tensor) -> torch.Tensor:
        if h.dim() == 4:
            return F.instance_norm(h, eps=NORM_EPS)
        return F.layer_norm(h, h.shape[1:], eps=NORM_EPS)


class ConcatInput(Concat):
    """The raw condition (one-hot label, or the text vector) concatenated to the input image (as constant
    extra channels for conv) and to z: the classic CVAE of Sohn et al. 2015 and the tutorial CVAEs."""

    ignores = ("embed_dim",)  # one-hot: no learned embedding

    def __init__(self, ctx: ConditioningContext):
        options = {**ctx.options, "at_input": True, "encoder_embed": None, "decoder_embed": None}
        super().__init__(replace(ctx, options=options))

    @staticmethod
    def input_width(source: ConditionSource, options: dict, embed_dim: int) -> int:
        return source.width(None)


CONDITIONINGS.register("concat")(Concat)
CONDITIONINGS.register("concat_input")(ConcatInput)
CONDITIONINGS.register("additive")(Additive)
CONDITIONINGS.register("film")(FiLM)
CONDITIONINGS.register("adain")(AdaIN)

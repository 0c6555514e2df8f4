"""The CVAE: q(z|x,c) and p(x|z,c) from a backbone, joined by a conditioning mode, and a prior over z
(N(0, I) or a learned p(z|c)).

The decoder returns logits; `decoder_mean(logits)` is each pixel's Bernoulli probability (recon_loss
bce), the continuous Bernoulli's mean (cbernoulli) or the Gaussian mean (mse).
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.conditions.image_tasks import target_of, visible_of
from benchmark.config import CellConfig
from benchmark.models.backbones import BACKBONES, Architecture
from benchmark.models.condition_source import ConditionSource
from benchmark.models.conditioning import CONDITIONINGS, ConditioningContext
from benchmark.models.loss import decoder_mean
from benchmark.models.prior import PRIORS, kl_diagonal_gaussians
from benchmark.registry import MODELS


class CVAE(nn.Module):
    def __init__(self, config: CellConfig, source: ConditionSource):
        super().__init__()
        preset = BACKBONES[config.backbone]
        options = preset.conditioning_options
        self.latent_dim = config.latent_dim
        self.recon_loss = config.recon_loss
        arch = Architecture(
            image_size=config.image_size,
            channels=config.channels,
            hidden=config.hidden,
            base_channels=config.base_channels,
            width_scale=config.width_scale,
            batchnorm=config.batchnorm,
            input_extra=self._input_extra(config, source, options),
        )
        self.encoder = preset.build_encoder(arch)
        self.decoder = preset.build_decoder(arch)
        feature_dim = self._feature_dim(arch)
        self.conditioning = CONDITIONINGS[config.conditioning](
            ConditioningContext(
                source=source,
                feature_dim=feature_dim,
                latent_dim=config.latent_dim,
                encoder_film=self.encoder.blocks.channels,
                decoder_film=self.decoder.film_channels,
                embed_dim=config.embed_dim,
                options=options,
            )
        )
        head_in = feature_dim + self.conditioning.feature_extra
        self.mu_head = nn.Linear(head_in, config.latent_dim)
        self.logvar_head = nn.Linear(head_in, config.latent_dim)
        self.decoder_input = nn.Linear(config.latent_dim + self.conditioning.latent_extra, self.decoder.input_width)
        self.prior = PRIORS[config.prior](config.latent_dim, source)
        self.uses_condition = self.reads_condition(config.model_dump())
        self.image_condition = source.image_shape is not None

    @classmethod
    def reads_condition(cls, cell: dict) -> bool:
        """Whether a cell's samples and density depend on its condition (a cell's config as stored): not for
        conditioning none with the standard prior, whose -log p(x|c) is -log p(x) and whose samples ignore
        the class asked for."""
        return cell.get("conditioning", "none") != "none" or PRIORS[cell.get("prior", "standard")].conditional

    @staticmethod
    def _input_extra(config: CellConfig, source: ConditionSource, options: dict) -> int:
        """Features (flat input) or channels (image input) the conditioning mode adds to the encoder's input."""
        input_width = getattr(CONDITIONINGS[config.conditioning], "input_width", None)
        return input_width(source, options, config.embed_dim) if input_width else 0

    def _feature_dim(self, arch: Architecture) -> int:
        # A conv encoder's output width follows from its layers; one dry run reads it off.
        if self.encoder.flat_input:
            return self.encoder.blocks.channels[-1]
        probe = torch.zeros(1, arch.channels + arch.input_extra, arch.image_size, arch.image_size)
        with torch.no_grad():
            training = self.encoder.training
            self.encoder.eval()
            width = self.encoder(probe, lambda site, h: h).shape[1]
            self.encoder.train(training)
        return width

    has_density = True  # p(x|c) is defined (the likelihood metrics where the decoder is a density)
    sampler = "z from the cell's prior (N(0, I), or p(z|c) when it learns one)"
    interpolated = "the two images' posterior means"  # what encode returns, which interpolation moves along

    def encode(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x in [0, 1], (B, C, H, W) -> (mu, logvar) of q(z|x, c)."""
        h = self._encoder_features(x, c)
        return self.mu_head(h), self.logvar_head(h)

    def encode_features(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """mu(x, c) alone."""
        return self.mu_head(self._encoder_features(x, c))

    def _encoder_features(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if self.conditioning.input_extra:
            x = self.conditioning.encoder_input(x.flatten(1) if self.encoder.flat_input else x, c)
        h = self.encoder(x, lambda site, h: self.conditioning.modulate("encoder", site, h, c))
        return self.conditioning.features(h, c)

    regulariser = "kl"  # the loss's second term, as the epoch log names it
    second_stage: str | None = None  # what after_training fits, if anything
    packable = True  # whether packed training may train it (a model with a trained second stage may not)

    def after_training(
        self, images: torch.Tensor, conditions: torch.Tensor, config: CellConfig, validation
    ) -> dict | None:
        """A second stage once the networks are trained and selected (the autoencoder's code density, the
        VQ-VAE's code prior), given the training images (uint8) and conditions and the validation split
        ((images, conditions) or None); returns what the cell's training summary records of it. Nothing
        for a model whose prior trains with it."""
        return None

    def decode_logits(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.decoder_input(self.conditioning.latent(z, c))
        return self.decoder(h, lambda site, h: self.conditioning.modulate("decoder", site, h, c))

    def kl(self, mu: torch.Tensor, logvar: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """KL(q(z|x,c) || prior) of each image and latent dimension, (B, D)."""
        if not self.prior.conditional:
            return kl_diagonal_gaussians(mu, logvar)
        return kl_diagonal_gaussians(mu, logvar, *self.prior(c))

    def forward(self, x, c, generator: torch.Generator | None = None, eps: torch.Tensor | None = None):
        """One pass with the reparameterisation z = mu + sigma * eps; returns (logits, KL per dimension).

        eps is drawn from `generator` unless given (packed training draws it per cell outside vmap).
        """
        mu, logvar = self.encode(x, c)
        if eps is None:
            eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        return self.decode_logits(z, c), self.kl(mu, logvar, c)

    def target_mask(self, c: torch.Tensor) -> torch.Tensor | None:
        """Image conditions: 1 at the pixels the task asks for, the only ones the loss and the likelihood
        count; None for other conditions (every pixel)."""
        return target_of(c) if self.image_condition else None

    def completed(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Image conditions: the visible pixels exactly as given, the model's only where the task hides them."""
        if not self.image_condition:
            return x
        mask = target_of(c)
        return visible_of(c) * (1 - mask) + x * mask

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean: the deterministic reconstruction used by the metrics."""
        mu, _ = self.encode(x, c)
        return self.completed(decoder_mean(self.decode_logits(mu, c), self.recon_loss), c)

    @torch.no_grad()
    def sample(self, c: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One image per condition in c: z from the prior (of that condition), x = the decoder's mean at (z, c)
        (for an image condition, a completion of its visible pixels)."""
        prior_mu, prior_logvar = self.prior(c)
        eps = torch.randn(prior_mu.shape, generator=generator, device=prior_mu.device)
        z = prior_mu + torch.exp(0.5 * prior_logvar) * eps
        return self.completed(decoder_mean(self.decode_logits(z, c), self.recon_loss), c)


class DeterministicNet(CVAE):
    """The deterministic baseline of Sohn, Lee & Yan 2015: the same networks without a latent. The decoder
    always gets z = 0 and the posterior is the standard prior, so the KL is 0, every sample of a condition
    is the same image, and the importance-weighted likelihood is exact (every weight is log p(x|c)). There
    is no recognition network, so the parameter count is what the baseline uses (its decoder input still
    has latent_dim inputs that only ever see zeros)."""

    ignores = ("prior", "beta", "kl_warmup_epochs")  # cell fields a model without a latent does not use
    interpolated = None  # z = 0 for every image: nothing to interpolate

    def __init__(self, config: CellConfig, source: ConditionSource):
        super().__init__(config, source)
        del self.encoder, self.mu_head, self.logvar_head

    def encode(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(len(x), self.latent_dim, device=x.device)
        return zeros, zeros

    def decode_logits(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return super().decode_logits(torch.zeros_like(z), c)


class VAE(CVAE):
    """The plain VAE (Kingma & Welling 2014): the CVAE's networks without the condition, N(0, I) prior. A
    model of its own, so that one `model` axis can set it beside the AE, the CVAE and the VQ-VAE: its cells
    hold conditioning none and the standard prior whatever the grid's base says (`forced`)."""

    forced = {"conditioning": "none", "prior": "standard"}

    def __init__(self, config: CellConfig, source: ConditionSource):
        super().__init__(config.model_copy(update=self.forced), source)


class Autoencoder(CVAE):
    """The plain (conditional) autoencoder: the CVAE's networks with a deterministic code z = mu(x, c), no
    KL and no log-variance head. It compresses and restores, but has no density over z, so it generates
    two ways, both measured: `sample` draws codes from a Gaussian fitted to the training codes of each class
    after training (ex-post density estimation, Ghosh et al. 2020; one Gaussian for all when the condition
    is no class), `sample_unit_codes` from N(0, I), which a code trained without a KL term was never
    pushed towards."""

    ignores = ("prior", "beta", "kl_warmup_epochs")
    has_density = False
    interpolated = "the two images' codes"

    @classmethod
    def reads_condition(cls, cell: dict) -> bool:
        """Its sampler draws from the class's own code Gaussian: a class condition is read even with
        conditioning none (one Gaussian for all when the condition is no class)."""
        from benchmark.registry import CONDITIONS

        classes = getattr(CONDITIONS[cell.get("condition", "label")], "class_indices", False)
        return classes or super().reads_condition(cell)

    second_stage = "code density"
    sampler = "codes from a Gaussian (full covariance) fitted to the training codes of each class after training"
    FIT_RIDGE = 1e-4  # added to each covariance's diagonal: a class whose codes span fewer than D directions

    def __init__(self, config: CellConfig, source: ConditionSource):
        super().__init__(config, source)
        del self.logvar_head
        groups = source.num_classes if source.num_classes and source.image_shape is None else 1
        self.register_buffer("code_mean", torch.zeros(groups, config.latent_dim))
        self.register_buffer("code_scale_tril", torch.eye(config.latent_dim).repeat(groups, 1, 1))

    def encode(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, zeros): the code, and a log-variance of 0 only so that callers of encode keep their shape."""
        code = self.encode_features(x, c)
        return code, torch.zeros_like(code)

    def forward(self, x, c, generator: torch.Generator | None = None, eps: torch.Tensor | None = None):
        code, _ = self.encode(x, c)
        return self.decode_logits(code, c), torch.zeros_like(code)

    def _group(self, c: torch.Tensor) -> torch.Tensor:
        return c.long() if len(self.code_mean) > 1 else torch.zeros(len(c), dtype=torch.long, device=c.device)

    @torch.no_grad()
    def after_training(self, images: torch.Tensor, conditions: torch.Tensor, config: CellConfig, validation) -> None:
        """Fit each class's Gaussian to the codes of its training images (the model in eval mode)."""
        codes = torch.cat(
            [
                self.encode(images[part].float().div(255), conditions[part])[0]
                for part in torch.arange(len(images), device=images.device).split(config.batch_size)
            ]
        ).double()
        groups = self._group(conditions)
        eye = torch.eye(codes.shape[1], dtype=codes.dtype, device=codes.device)
        for g in range(len(self.code_mean)):
            own = codes[groups == g]
            if len(own) < 2:
                raise ValueError(f"the autoencoder's code density needs 2 training images of class {g}, has {len(own)}")
            covariance = torch.cov(own.T).reshape(len(eye), len(eye)) + self.FIT_RIDGE * eye
            self.code_mean[g] = own.mean(0).float()
            self.code_scale_tril[g] = torch.linalg.cholesky(covariance).float()

    @torch.no_grad()
    def sample(self, c: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        g = self._group(c)
        eps = torch.randn(len(c), self.latent_dim, generator=generator, device=c.device)
        z = self.code_mean[g] + (self.code_scale_tril[g] @ eps.unsqueeze(-1)).squeeze(-1)
        return self.completed(decoder_mean(self.decode_logits(z, c), self.recon_loss), c)

    @torch.no_grad()
    def sample_unit_codes(self, c: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(len(c), self.latent_dim, generator=generator, device=c.device)
        return self.completed(decoder_mean(self.decode_logits(z, c), self.recon_loss), c)


def build_model(config: CellConfig, source: ConditionSource) -> CVAE:
    """The cell's model; a convolutional one in channels_last, the layout cuDNN and oneDNN convolutions prefer
    (in it a 64 px conv cell's training step is 1.16x faster on CPU: `bench perf layout`,
    reports/perf_layout.md). A checkpoint is loaded in the layout it was saved in (load_checkpoint), so a
    metric measured again from it is summed in the order of the one measured after training."""
    model = MODELS[config.model](config, source)
    if BACKBONES[config.backbone].flat_input:
        return model
    return model.to(memory_format=torch.channels_last)

"""The VQ-VAE (van den Oord et al. 2017) with a condition-driven autoregressive prior over its code grid.

The conv encoder's last feature map (C x s x s) is projected to code_dim channels; each of the s x s
vectors is snapped to the nearest of codebook_size learned vectors, and the decoder reads the snapped
grid. Gradients pass the snapping unchanged (the straight-through estimator); the codebook loss pulls the
chosen vectors to the encoder's outputs and the commitment term (weight `commitment`) the outputs to
them. Generation is a second stage: a small causal transformer p(k_1..k_P | c) over the training images'
code indices, the condition as its first token, trained once the autoencoder is trained and selected,
with its own validation loss and early stopping.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from benchmark.config import CellConfig
from benchmark.models.condition_source import ConditionSource
from benchmark.models.cvae import CVAE
from benchmark.models.loss import decoder_mean, reconstruction_per_image

PRIOR_LAYERS = 2
PRIOR_HEADS = 4
EMA_DECAY = 0.99  # codebook_update 'ema': the paper's decay
EMA_EPS = 1e-5
# a vector whose running count fell below this is moved to an encoder output of the batch (a "random
# restart", as Jukebox does): from a count of 1 at decay 0.99 that is about 690 steps without any use
DEAD_BELOW = 1e-3


class VectorQuantizer(nn.Module):
    """Nearest-codebook-vector snapping of a (B, d, s, s) grid, and the two loss terms of the codebook."""

    def __init__(self, codebook_size: int, code_dim: int, update: str):
        super().__init__()
        self.codebook = nn.Embedding(codebook_size, code_dim)
        nn.init.uniform_(self.codebook.weight, -1 / codebook_size, 1 / codebook_size)
        self.update = update
        if update == "ema":  # moved by the running means below, not by gradients
            self.codebook.weight.requires_grad_(False)
        self.register_buffer("initialised", torch.tensor(False))
        self.register_buffer("cluster_size", torch.ones(codebook_size))
        self.register_buffer("embed_sum", self.codebook.weight.detach().clone())

    @torch.no_grad()
    def ema_update(self, z_e: torch.Tensor, indices: torch.Tensor) -> None:
        """van den Oord et al. 2017, appendix A.1: each vector becomes the running mean (decay EMA_DECAY)
        of the encoder outputs snapped to it, counts Laplace-smoothed so an unused vector is not divided
        by zero."""
        flat = z_e.float().permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
        one_hot = F.one_hot(indices.flatten(), len(self.cluster_size)).to(flat.dtype)
        self.cluster_size.mul_(EMA_DECAY).add_(one_hot.sum(0), alpha=1 - EMA_DECAY)
        self.embed_sum.mul_(EMA_DECAY).add_(one_hot.T @ flat, alpha=1 - EMA_DECAY)
        total, k = self.cluster_size.sum(), len(self.cluster_size)
        smoothed = (self.cluster_size + EMA_EPS) / (total + k * EMA_EPS) * total
        self.codebook.weight.copy_(self.embed_sum / smoothed.unsqueeze(1))
        self._restart_dead(flat)

    def _restart_dead(self, flat: torch.Tensor) -> None:
        dead = self.cluster_size < DEAD_BELOW
        if dead.any():  # evenly spaced outputs of the batch: deterministic, and spread over its images
            picked = flat[torch.linspace(0, len(flat) - 1, int(dead.sum()), device=flat.device).long()]
            self.codebook.weight[dead] = picked
            self.embed_sum[dead] = picked
            self.cluster_size[dead] = 1.0

    @torch.no_grad()
    def initialise(self, z_e: torch.Tensor) -> None:
        """Set the codebook to encoder outputs of the first training batch (evenly spaced over its vectors):
        a codebook drawn far from where the encoder's outputs lie leaves all but a few vectors unused
        (on the synthetic set, uniform(-1/K, 1/K) vectors: perplexity 1.9 of 32, 81% never chosen)."""
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
        picked = torch.linspace(0, len(flat) - 1, self.codebook.num_embeddings, device=flat.device).long()
        self.codebook.weight.copy_(flat[picked])
        self.embed_sum.copy_(flat[picked])
        self.initialised.fill_(True)

    def indices(self, z_e: torch.Tensor) -> torch.Tensor:
        """(B, d, s, s) -> (B, s*s) index of each vector's nearest codebook vector (squared distance, in fp32
        whatever autocast says: bf16 distances snap some vectors to another code)."""
        with torch.autocast(z_e.device.type, enabled=False):
            flat = z_e.float().permute(0, 2, 3, 1).reshape(-1, z_e.shape[1])
            table = self.codebook.weight.float()
            distances = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ table.T + table.pow(2).sum(1)
        return distances.argmin(1).view(len(z_e), -1)

    def lookup(self, indices: torch.Tensor, side: int) -> torch.Tensor:
        """(B, s*s) indices -> (B, d, s, s) codebook vectors."""
        return self.codebook(indices).view(len(indices), side, side, -1).permute(0, 3, 1, 2)


def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """z_q forward; backward, the decoder's gradient reaches z_e unchanged."""
    return z_e + (z_q - z_e).detach()


def codebook_terms(z_e: torch.Tensor, z_q: torch.Tensor, commitment: float, codebook_loss: bool) -> torch.Tensor:
    """Per image, summed over the grid (as the reconstruction is over pixels): commitment *
    ||z_e - sg[e]||^2, plus the codebook loss ||sg[z_e] - e||^2 where the codebook learns by gradient
    (codebook_update 'loss'; with 'ema' the running means move it)."""
    commit = commitment * (z_e - z_q.detach()).pow(2).flatten(1).sum(1)
    return commit + (z_e.detach() - z_q).pow(2).flatten(1).sum(1) if codebook_loss else commit


class CodePrior(nn.Module):
    """p(k_1..k_P | c) = prod_i p(k_i | c, k_<i): a causal transformer whose first input is the condition's
    embedding and whose input i + 1 is code k_i's; output i is the distribution of k_i."""

    def __init__(self, codebook_size: int, positions: int, source: ConditionSource, width: int):
        super().__init__()
        self.condition = source.embedding(width)
        self.tokens = nn.Embedding(codebook_size, width)
        self.position = nn.Parameter(torch.randn(positions, width) * 0.02)
        layer = nn.TransformerEncoderLayer(
            width, PRIOR_HEADS, 4 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.body = nn.TransformerEncoder(layer, PRIOR_LAYERS, enable_nested_tensor=False)
        self.out = nn.Linear(width, codebook_size)
        self.register_buffer("causal", nn.Transformer.generate_square_subsequent_mask(positions), persistent=False)

    def logits(self, codes: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """(B, P) codes -> (B, P, K): position i's logits from the condition and codes before i."""
        inputs = torch.cat([self.condition(c).unsqueeze(1), self.tokens(codes[:, :-1])], 1) + self.position
        return self.out(self.body(inputs, mask=self.causal, is_causal=True))

    def nll(self, codes: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """-log p(codes | c) per image, nats."""
        return F.cross_entropy(self.logits(codes, c).transpose(1, 2), codes, reduction="none").sum(1)

    @torch.no_grad()
    def sample(self, c: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        codes = torch.zeros(len(c), len(self.position), dtype=torch.long, device=self.position.device)
        for i in range(codes.shape[1]):
            probabilities = self.logits(codes, c)[:, i].softmax(-1)
            codes[:, i] = torch.multinomial(probabilities, 1, generator=generator).squeeze(1)
        return codes


class VQVAE(CVAE):
    """The backbone's encoder and decoder around a vector-quantised code grid; unconditional itself, the
    condition enters through the prior only (conditioning: none)."""

    ignores = ("prior", "beta", "kl_warmup_epochs", "latent_dim")
    has_density = True
    second_stage = "code prior"
    regulariser = "vq"  # codebook loss + commitment * commitment term, per image
    packable = False  # its code prior trains after the autoencoder, one cell at a time
    sampler = "code grids drawn from the autoregressive prior given the condition, then decoded"
    interpolated = "the two images' encoder grids before snapping, each step snapped to the codebook"

    forced = {"conditioning": "none"}  # the condition enters through the code prior only

    @classmethod
    def reads_condition(cls, cell: dict) -> bool:
        return True  # its code prior is given the condition

    def __init__(self, config: CellConfig, source: ConditionSource):
        super().__init__(config.model_copy(update=self.forced), source)
        del self.mu_head, self.logvar_head, self.decoder_input, self.prior
        channels, side, _ = self.decoder.shape
        self.side, self.code_dim, self.commitment = side, config.code_dim, config.commitment
        self.latent_dim = config.code_dim * side * side  # encode's flat width (interpolation, shapes)
        self.pre_quant = nn.Conv2d(channels, config.code_dim, 1)
        self.post_quant = nn.Conv2d(config.code_dim, channels, 1)
        self.quantizer = VectorQuantizer(config.codebook_size, config.code_dim, config.codebook_update)
        self.code_prior = CodePrior(config.codebook_size, side * side, source, config.prior_width)

    def _z_e(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.pre_quant(self.encoder.blocks(x, lambda site, h: h))

    def codes(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """(B, s*s) code indices of images x."""
        return self.quantizer.indices(self._z_e(x, c))

    def _decode_grid(self, z_q: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.post_quant(z_q).flatten(1), lambda site, h: h)

    def encode(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the encoder's grid before snapping, flat; zeros): what interpolation moves along."""
        z_e = self._z_e(x, c).flatten(1)
        return z_e, torch.zeros_like(z_e)

    def decode_logits(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """A flat pre-snapping grid -> snapped -> decoded."""
        z_e = z.view(len(z), self.code_dim, self.side, self.side)
        return self._decode_grid(self.quantizer.lookup(self.quantizer.indices(z_e), self.side))

    def forward(self, x, c, generator: torch.Generator | None = None, eps: torch.Tensor | None = None):
        """(logits, the codebook and commitment terms per image as a (B, 1) regulariser)."""
        z_e = self._z_e(x, c)
        if self.training and not self.quantizer.initialised:
            self.quantizer.initialise(z_e)
        indices = self.quantizer.indices(z_e)
        if self.training and self.quantizer.update == "ema":
            self.quantizer.ema_update(z_e.detach(), indices)
        z_q = self.quantizer.lookup(indices, self.side)
        logits = self._decode_grid(straight_through(z_e, z_q))
        terms = codebook_terms(z_e, z_q, self.commitment, codebook_loss=self.quantizer.update == "loss")
        return logits, terms.unsqueeze(1)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        z_q = self.quantizer.lookup(self.codes(x, c), self.side)
        return self.completed(decoder_mean(self._decode_grid(z_q), self.recon_loss), c)

    @torch.no_grad()
    def sample(self, c: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        z_q = self.quantizer.lookup(self.code_prior.sample(c, generator), self.side)
        return self.completed(decoder_mean(self._decode_grid(z_q), self.recon_loss), c)

    @torch.no_grad()
    def neg_elbo(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """-log p(x|k(x)) - log p(k(x)|c) per image: the negative ELBO of a one-hot posterior (no entropy
        term), an upper bound on -log p(x|c) where the decoder is a normalised density."""
        codes = self.codes(x, c)
        logits = self._decode_grid(self.quantizer.lookup(codes, self.side))
        return reconstruction_per_image(logits, x, self.recon_loss, self.target_mask(c)) + self.code_prior.nll(codes, c)

    def after_training(self, images, conditions, config: CellConfig, validation) -> dict:
        """Train the code prior on the training images' codes (training/second_stage.py)."""
        from benchmark.training.second_stage import train_code_prior

        return train_code_prior(self, images, conditions, config, validation)


def codebook_usage(codes: torch.Tensor, codebook_size: int) -> tuple[float, float]:
    """(perplexity of the codes' empirical distribution, share of codebook vectors never used)."""
    counts = torch.bincount(codes.flatten(), minlength=codebook_size).double()
    p = counts / counts.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum().item()
    return math.exp(entropy), (counts == 0).double().mean().item()

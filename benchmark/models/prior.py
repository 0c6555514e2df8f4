"""Priors over the latent code: the standard normal, or a learned conditional prior p(z|c).

A prior gives the mean and log-variance of a diagonal Gaussian for each condition; the KL term of
the loss, the samples and the likelihood metrics all take it from here.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.models.condition_source import ConditionSource
from benchmark.registry import PRIORS

PRIOR_HIDDEN = 128  # width of the prior network's hidden layer (fixed: the same for every mechanism of a grid)


class StandardPrior(nn.Module):
    """p(z) = N(0, I), whatever the condition: the plain CVAE of Kingma et al. 2014."""

    conditional = False

    def __init__(self, latent_dim: int, source: ConditionSource | None = None):  # it reads no condition
        super().__init__()
        self.latent_dim = latent_dim

    def forward(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(len(c), self.latent_dim, device=c.device)
        return zeros, zeros


class ConditionalPrior(StandardPrior):
    """p(z|c) = N(mu(c), diag sigma(c)^2) from a prior network (Sohn, Lee & Yan 2015): the condition's
    embedding, one ReLU layer, then mu and log sigma^2. The output layer starts at zero, so training
    begins from N(0, I)."""

    conditional = True

    def __init__(self, latent_dim: int, source: ConditionSource):
        super().__init__(latent_dim)
        self.net = nn.Sequential(source.embedding(PRIOR_HIDDEN), nn.ReLU(), nn.Linear(PRIOR_HIDDEN, 2 * latent_dim))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, c):
        mu, logvar = self.net(c).chunk(2, dim=1)
        return mu, logvar


PRIORS.register("standard")(StandardPrior)
PRIORS.register("conditional")(ConditionalPrior)


def kl_diagonal_gaussians(mu, logvar, prior_mu=None, prior_logvar=None) -> torch.Tensor:
    """KL(N(mu, e^logvar) || N(prior_mu, e^prior_logvar)) of each dimension, (B, D); no prior: N(0, I).

    The standard-normal case keeps its own closed form, so cells of that prior train bit for bit as before."""
    if prior_mu is None:
        return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
    return 0.5 * (prior_logvar - logvar + (logvar.exp() + (mu - prior_mu).pow(2)) / prior_logvar.exp() - 1)

"""Every model a cell may ask for (`model:`), registered in one place: the VAE family and its two
latent-free relatives (cvae.py), and the VQ-VAE (vqvae.py)."""

from benchmark.models.cvae import CVAE, VAE, Autoencoder, DeterministicNet
from benchmark.models.vqvae import VQVAE
from benchmark.registry import MODELS

# in the order they were added: a figure's colour of each model follows it
MODELS.register("cvae")(CVAE)
MODELS.register("deterministic")(DeterministicNet)
MODELS.register("ae")(Autoencoder)
MODELS.register("vae")(VAE)
MODELS.register("vqvae")(VQVAE)

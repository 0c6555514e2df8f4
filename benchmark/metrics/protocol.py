"""The evaluation protocol: every setting that changes a metric, and every metric's definition.

Both are stored with each cell's metrics and printed in every report, so a
number never travels without the protocol that produced it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    split: str = Field(default="test", pattern="^test$")
    recon_size: int | None = Field(default=None, gt=0)  # test images for reconstruction; None = all
    n_samples: int = Field(default=10_000, gt=0, le=1_000_000)  # generated images for FID / KID / cond_acc
    nll_size: int = Field(default=500, gt=0)  # test images for the importance-weighted NLL
    nll_k: int = Field(default=100, gt=0, le=100_000)  # importance samples per image
    batch_size: int = Field(default=500, gt=0, le=65_536)
    inception: bool = True  # Inception FID / KID via clean-fid when its weights are present
    inception_weights: str | None = None  # path; None = clean-fid's default place


METRIC_DEFINITIONS = {
    "mse_pixel": "mean over test images and pixels of (x - x_hat)^2, x_hat = decoder mean at z = mu(x, c); "
    "pixels in [0, 1]",
    "sse_image": "mean over test images of the per-image sum of squared errors (what the original CVAE "
    "write-up calls MSE)",
    "ssim": "mean over test images of skimage.metrics.structural_similarity(x, x_hat, data_range=1, "
    "channel_axis=0 for RGB), default 7x7 Gaussian-free window",
    "fid_domain": "Frechet distance (cleanfid.fid.frechet_distance) between penultimate-layer features of "
    "the data set's own seeded classifier on n_samples generated images and on the test split; "
    "NOT Inception FID",
    "kid_domain": "kernel inception distance (cleanfid.fid.kernel_distance) on the same domain features",
    "cond_acc": "accuracy of the domain classifier on generated samples against the class asked for",
    "fid_inception": "clean-fid 'clean' mode FID with its Inception-v3 features (generated vs test split); "
    "grey images repeated to 3 channels",
    "kid_inception": "clean-fid KID on the same Inception features",
    "nll_iw": "importance-weighted estimate of -log p(x|c) in nats per image, k samples from q(z|x,c), "
    "Bernoulli decoder only",
    "neg_elbo": "negative ELBO (beta = 1) in nats per image on the same images",
    "kl_per_dim": "mean over test images of KL(q(z_i|x,c) || N(0,1)) for each latent dimension i",
    "active_units": "number of latent dimensions whose Var_x(E_q[z_i]) exceeds 0.01",
}


# The scalar metrics that tables, figures and comparisons show, and which way is better.
HEADLINE_METRICS = {
    "sse_image": "lower",
    "mse_pixel": "lower",
    "ssim": "higher",
    "fid_domain": "lower",
    "kid_domain": "lower",
    "cond_acc": "higher",
    "fid_inception": "lower",
    "nll_iw": "lower",
    "neg_elbo": "lower",
    "active_units": "higher",
}

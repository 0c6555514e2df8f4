"""The vocabulary of MetricSpec.depends_on: the cell fields a metric's value depends on by its definition,
each with why (report/comparability.py refuses comparisons across levels that change one)."""

from __future__ import annotations

PER_IMAGE_SUM = (
    ("image_size", "a per-image sum grows with the number of pixels"),
    ("dataset", "data sets differ in pixels per image and channels"),
)
RESAMPLED_PIXELS = (
    (
        "image_size",
        "each size's test images are the same images at another resolution, and a pixel then carries another "
        "share of the detail (an upsample spreads one pixel over several, each easier to predict; a downsample "
        "merges several), so a per-pixel average changes with the size alone",
    ),
)
RESAMPLED_WINDOW = (
    (
        "image_size",
        "SSIM's window is a fixed number of pixels, so at each size it spans another share of the image, whose "
        "pixels are the same images at another resolution",
    ),
)
DOMAIN_INSTRUMENT = (
    ("image_size", "the domain classifier resizes every image to 28 px first, so each size is judged at 28 px"),
    ("dataset", "each data set has its own domain classifier"),
    ("task", "the task sets how much of each sample is given rather than generated"),
)
DENSITY_DATA = (
    ("dataset", "a density of other data"),
    ("binary", "binary and grey pixels are other data"),
    ("recon_loss", "densities of different decoder families are not on one scale"),
)
DENSITY = (*DENSITY_DATA, ("image_size", "a density over another number of pixels"))
READS_CONDITION = (
    "reads_condition",
    "-log p(x|c) is -log p(x) where the model ignores the condition (conditioning none, standard prior) and "
    "-log p(x|y) where it reads it: two different quantities",
)
TASK_SUM = (
    ("task", "a sum over the target pixels, whose number the task sets"),
    ("image_size", "a sum over the target pixels, whose number grows with the size"),
    *DENSITY_DATA,
)
PER_PIXEL_DENSITY = (*DENSITY_DATA, *RESAMPLED_PIXELS)
LABELS = (("dataset", "data sets differ in their number of classes"),)
GIVEN_PIXELS = (("task", "the image includes the pixels the task gives"),)
INCEPTION_REFERENCE = (
    ("dataset", "another test set as the reference"),
    ("image_size", "the reference is the test split at each size"),
)
CHANCE_WITHOUT_CONDITION = (
    "a cell whose model ignores the condition takes nothing from it by construction (chance accuracy, no "
    "label information)"
)

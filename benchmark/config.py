"""The resolved configuration of one cell: every field that changes its result.

A cell's id is a short hash of this config's canonical JSON, so the same cell
in two grids is the same cell. Fields that only change *where* it runs (device,
results folder) are not part of it.

Types are strict (no `true` for a number, no "8" for an integer), numbers are finite,
and the names of data sets, condition kinds, backbones, conditioning modes and priors
are checked against their registries, which are the only lists of them. The schema sits at the bottom
of the package: the registries (registry.py) import their entries' modules when first asked.
"""

from __future__ import annotations

import functools
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from benchmark.registry import (
    BACKBONES,
    CELL_FIELD_REGISTRIES,
    CONDITIONINGS,
    CONDITIONS,
    DATASETS,
    IMAGE_TASKS,
    MODELS,
    SCHEDULES,
    Registry,
)

# Upper bounds that keep a typo from asking for an impossible model; each is far above any published CVAE.
MAX_WIDTH = 16_384  # latent_dim, embed_dim, hidden widths: a 16k x 16k Linear is already 1 GiB of fp32 weights
MAX_BATCH = 65_536

VQ_FIELDS = ("codebook_size", "code_dim", "commitment", "codebook_update", "prior_epochs", "prior_width")  # vqvae's
ID_OPTIONAL = (  # see CellConfig.identity
    "prior",
    "width_scale",
    "curve_size",
    "task",
    "model",
    "binarize_seed",
    "val_size",
    "schedule",
    "milestones",
    "gamma",
    "lr_min",
    "plateau_patience",
    "patience",
    "min_delta",
    "select",
    *VQ_FIELDS,
)

Count = Annotated[int, Field(strict=True, gt=0)]
Width = Annotated[int, Field(strict=True, gt=0, le=MAX_WIDTH)]


IMAGE_SIZES = (28, 32, 64, 128, 256)  # every size a cell may ask for; the conv backbone grows with it


def registry_of(field: str) -> Registry | None:
    """The registry whose names a cell field takes, or None for a field that is no registered axis."""
    return CELL_FIELD_REGISTRIES.get(field)


def parse_task(text: str, image_size: int) -> tuple[str, int]:
    """An image task NAME:ARGUMENT (conditions/image_tasks.py) -> (name, argument), or ValueError saying what
    is allowed."""
    name, sep, argument = text.partition(":")
    if name not in IMAGE_TASKS:
        raise ValueError(f"unknown image task {name!r}; valid: {', '.join(IMAGE_TASKS.names())} (as NAME:ARGUMENT)")
    family = IMAGE_TASKS[name]
    if not sep or not argument.isdigit() or not family.valid(int(argument), image_size):
        raise ValueError(f"image task {text!r}: the argument after {name}: is {family.arguments}")
    return name, int(argument)


@functools.cache
def _json_defaults() -> dict:
    """Every field's default as the JSON dump writes it (a tuple default dumps as a list)."""
    return CellConfig.model_construct().model_dump(mode="json")


class CellConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    dataset: str = "fashion_mnist"
    train_size: Count | None = None
    image_size: int = Field(default=28, strict=True)
    condition: str = "label"
    task: str | None = None  # condition "image": NAME:ARGUMENT, e.g. quadrants:1 (conditions/image_tasks.py)
    model: str = "cvae"  # or "deterministic": the same networks without a latent (models/cvae.py)
    backbone: str = "conv"
    conditioning: str = "concat"
    prior: str = "standard"  # over z: N(0, I) or a learned p(z|c) (models/prior.py)
    latent_dim: Width = 16
    beta: float = Field(default=1.0, ge=0, strict=True)
    recon_loss: Literal["bce", "cbernoulli", "mse"] = "bce"
    binarize: Literal["none", "dynamic", "fixed"] = "none"  # grey data sets as binary images (data/binarize.py)
    binarize_seed: int = Field(default=0, ge=0, strict=True)  # which fixed draw (train: this seed, test: + 1)
    epochs: Count = 5
    batch_size: int = Field(default=128, gt=0, le=MAX_BATCH, strict=True)
    lr: float = Field(default=1e-3, gt=0, strict=True)
    seed: int = Field(default=0, ge=0, strict=True)
    kl_warmup_epochs: int = Field(default=0, ge=0, strict=True)  # the KL weight ramps up over these epochs
    # Training protocol (training/trainer.py): a validation split held out of the train split (its last
    # val_size images, the same for every cell), a learning-rate schedule stepped per epoch, early stopping
    # on the validation loss, and which epoch's model is measured.
    val_size: int = Field(default=0, ge=0, strict=True)
    schedule: str = "constant"  # training/schedules.py: constant, multistep, cosine, plateau
    milestones: tuple[Annotated[int, Field(strict=True, gt=0)], ...] = ()  # multistep: epochs after which lr *= gamma
    gamma: float = Field(default=0.1, gt=0, le=1, strict=True)  # multistep and plateau: the lr factor
    lr_min: float = Field(default=0.0, ge=0, strict=True)  # cosine: the floor
    plateau_patience: int = Field(default=5, ge=1, strict=True)  # plateau: epochs without improvement
    patience: int | None = Field(default=None, ge=1, strict=True)  # early stopping; None = run every epoch
    min_delta: float = Field(default=0.0, ge=0, strict=True)  # early stopping: improvement that counts (nats)
    select: Literal["last", "best_val"] = "last"  # the epoch whose model is measured
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16: autocast on CUDA (and on CPU when asked)
    embed_dim: Width = 32  # size of the learned label embedding
    hidden: tuple[Width, ...] = Field(default=(512, 256), min_length=1)  # MLP backbone widths
    base_channels: int = Field(default=32, gt=0, le=512, strict=True)  # conv backbone: channels of the first block
    batchnorm: bool = Field(default=False, strict=True)  # conv backbone
    # every hidden width (MLP hidden, conv channels) times this, rounded; grids' match_params sets it
    width_scale: float = Field(default=1.0, gt=0, le=64, strict=True)
    # test images reconstructed after every epoch for a learning curve (test sse_image and both SSIMs
    # in the epoch log); 0 = none. Measuring changes nothing the cell learns.
    curve_size: int = Field(default=0, ge=0, le=100_000, strict=True)
    text_encoder: str | None = None  # condition "text": open_clip MODEL[:TAG|:FILE], see conditions/clip_text.py
    text_normalize: bool = Field(default=True, strict=True)  # L2-normalise sentence embeddings and their mean
    # model vqvae (models/vqvae.py): K codebook vectors of code_dim, the commitment weight, and its code
    # prior's epoch budget (None: the cell's epochs) and width
    codebook_size: int = Field(default=512, ge=2, le=MAX_WIDTH, strict=True)
    code_dim: Width = 16
    commitment: float = Field(default=0.25, ge=0, strict=True)
    codebook_update: Literal["ema", "loss"] = "ema"  # running means (the paper's appendix) or the codebook loss
    prior_epochs: Count | None = None
    prior_width: int = Field(default=64, gt=0, le=4096, strict=True)

    @field_validator(*CELL_FIELD_REGISTRIES)
    @classmethod
    def _registered(cls, value: str, info: ValidationInfo) -> str:
        registry = CELL_FIELD_REGISTRIES[info.field_name]
        if value not in registry:
            raise ValueError(f"unknown {registry.kind} {value!r}; valid: {', '.join(registry.names())}")
        return value

    @field_validator("image_size")
    @classmethod
    def _image_size(cls, value: int) -> int:
        if value not in IMAGE_SIZES:
            raise ValueError(f"image size not supported; valid: {', '.join(map(str, IMAGE_SIZES))}")
        return value

    @field_validator("milestones")
    @classmethod
    def _increasing(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if list(value) != sorted(set(value)):
            raise ValueError("milestones must increase strictly")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CellConfig:
        BACKBONES[self.backbone].check(self)
        data = DATASETS[self.dataset]
        if self.condition not in data.conditions:
            raise ValueError(
                f"data set {self.dataset} supports condition {' or '.join(map(repr, data.conditions))}, "
                f"not {self.condition!r}"
            )
        if self.train_size is not None and data.train_images is not None and self.train_size > data.train_images:
            raise ValueError(
                f"train_size {self.train_size} is larger than the {self.dataset} train split "
                f"({data.train_images} images)"
            )
        self._check_training_protocol(data.train_images)
        if self.binarize != "none" and (data.channels != 1 or self.recon_loss != "bce"):
            raise ValueError(
                f"binarize {self.binarize!r} is for grey data sets with the Bernoulli decoder (recon_loss bce); "
                f"this cell has {self.dataset} and recon_loss {self.recon_loss!r}"
            )
        if (self.condition == "image") != (self.task is not None):
            raise ValueError(
                "condition 'image' needs task (e.g. 'quadrants:1', 'inpaint:14', 'superres:2'), and task is only "
                f"for condition 'image' (this cell: condition {self.condition!r}, task {self.task!r})"
            )
        if self.task is not None:
            parse_task(self.task, self.image_size)
        self._check_model_fields()
        if self.condition == "text" and not self.text_encoder:
            raise ValueError(
                "condition 'text' needs text_encoder, e.g. 'ViT-B-32:openai', 'ViT-B-32:/path/to/file.pt', "
                "or 'cvae-tiny-clip' (an untrained stand-in)"
            )
        return self

    def _check_model_fields(self) -> None:
        stage = MODELS[self.model].second_stage
        if stage and self.binarize == "dynamic":
            raise ValueError(
                f"model {self.model} fits its {stage} on the training images once, after training; binarize "
                "'dynamic' draws new ones every epoch: use binarize 'fixed'"
            )
        defaults = _json_defaults()
        given = [f for f in VQ_FIELDS if getattr(self, f) != defaults[f]]
        if self.model != "vqvae":
            if given:
                raise ValueError(
                    f"{', '.join(given)}: options of model vqvae's codebook and code prior; "
                    f"model {self.model!r} has none"
                )
            return
        if BACKBONES[self.backbone].flat_input:
            raise ValueError(
                f"model vqvae needs a backbone with a spatial code (a conv one); backbone {self.backbone!r} has none"
            )
        if self.prior_width % 4:
            raise ValueError(
                f"prior_width {self.prior_width}: the code prior's width must divide into its 4 attention heads"
            )

    def _check_training_protocol(self, split_images: int | None) -> None:
        if split_images is not None and self.val_size:
            left = split_images - self.val_size
            if left < (self.train_size or 1):
                raise ValueError(
                    f"val_size {self.val_size} leaves {max(left, 0)} of the {split_images} {self.dataset} training "
                    f"images, fewer than train_size {self.train_size or 1}"
                )
        needs = [
            what
            for what, needed in (
                (f"schedule {self.schedule!r}", SCHEDULES[self.schedule].needs_validation),
                (f"patience {self.patience}", self.patience is not None),
                ("select 'best_val'", self.select == "best_val"),
            )
            if needed
        ]
        if needs and not self.val_size:
            verb = "needs" if len(needs) == 1 else "need"
            raise ValueError(f"{' and '.join(needs)} {verb} a validation split: set val_size")

    def canonical(self) -> CellConfig:
        """The same cell with the fields its backbone, conditioning and condition ignore at their defaults,
        so one model has one id (hidden does not change a conv cell, embed_dim not a FiLM one)."""
        ignored = {
            *SCHEDULES[self.schedule].ignores,
            *BACKBONES[self.backbone].ignores,
            *getattr(MODELS[self.model], "ignores", ()),
            *getattr(CONDITIONINGS[self.conditioning], "ignores", ()),
            *getattr(CONDITIONS[self.condition], "ignores", ()),
        }
        reset = {name: type(self).model_fields[name].default for name in ignored}
        return self.model_copy(update={**reset, **getattr(MODELS[self.model], "forced", {})})

    def identity(self) -> dict:
        """What a cell's id hashes: every field, except those added after ids were first published while
        they hold their default, so the cells that existed before keep their ids."""
        fields, defaults = self.model_dump(mode="json"), _json_defaults()
        return {k: v for k, v in fields.items() if not (k in ID_OPTIONAL and v == defaults[k])}

    @property
    def channels(self) -> int:
        return DATASETS[self.dataset].channels

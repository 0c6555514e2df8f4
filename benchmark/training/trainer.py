"""Train one cell. The cell's seed drives, through separate explicit generators:
initialisation, the order of the data, and the reparameterisation noise.

Data stay on the device as uint8 tensors; a batch is an index slice of a seeded
permutation, converted to float only when used. No per-sample Python runs in the loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from benchmark.conditions import PreparedConditions, prepare_conditions
from benchmark.config import CellConfig
from benchmark.data import DatasetBundle, load_dataset
from benchmark.data.binarize import binarized, draw
from benchmark.errors import Preempted
from benchmark.metrics.reconstruction import reconstruction_scores
from benchmark.models.cvae import CVAE, build_model
from benchmark.models.loss import cvae_loss, kl_weight, likelihood_case
from benchmark.registry import MODELS
from benchmark.seeding import stream_generator, stream_seed
from benchmark.store import CellStore
from benchmark.store.cells import CHECKPOINT
from benchmark.training.cpu import configure_cpu
from benchmark.training.resume import STOP, Checkpointing, EpochPosition
from benchmark.training.schedules import LearningRate
from benchmark.training.selection import ModelSelection, training_summary

VALIDATION_BATCH = 1000


class CellFailed(Exception):
    """Training could not finish (non-finite loss, out of memory); the reason is recorded."""


@dataclass
class TrainedCell:
    config: CellConfig
    model: CVAE
    log: list[dict]
    bundle: DatasetBundle  # train split already reduced to the cell's train_size
    conditions: PreparedConditions
    device: torch.device
    summary: dict = field(default_factory=dict)  # training_summary: epochs run, epoch selected, convergence


def resolve_device(name: str | None = "auto") -> torch.device:
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_seeded_model(config: CellConfig, conditions: PreparedConditions, device: torch.device) -> CVAE:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(stream_seed(config.seed, "init"))
        model = build_model(config, conditions.source)
    return model.to(device)


def load_cell_data(
    dataset: str,
    image_size: int,
    train_size: int | None,
    seed: int,
    data_dir=None,
    binarize: str = "none",
    val_size: int = 0,
    binarize_seed: int = 0,
) -> DatasetBundle:
    """The cell's data: binarised if asked (the whole split, the same for every cell), the validation split
    held out (the train split's last val_size images), then the rest reduced to a seeded subset of
    train_size images."""
    bundle = binarized(load_dataset(dataset, image_size, data_dir), binarize, binarize_seed)
    bundle = bundle.hold_out_validation(val_size)
    return bundle.with_train(bundle.train.seeded_subset(train_size, seed))


def cell_data(config: CellConfig, data_dir=None) -> DatasetBundle:
    return load_cell_data(
        config.dataset,
        config.image_size,
        config.train_size,
        config.seed,
        data_dir,
        config.binarize,
        config.val_size,
        config.binarize_seed,
    )


def train_cell(
    config: CellConfig,
    device: str | torch.device | None = "auto",
    data_dir: str | Path | None = None,
    bundle: DatasetBundle | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    compile: bool = False,
    checkpointing: Checkpointing | None = None,
) -> TrainedCell:
    """Train one cell. `compile` runs the step through torch.compile: faster after a warm-up, and equal
    to eager only within float tolerance, so it is a run option recorded in provenance. `checkpointing`:
    resume from the cell's saved state if there is one, and save it as training goes (training/resume.py)."""
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    if device.type == "cpu":
        configure_cpu()
    bundle = bundle or cell_data(config, data_dir)
    conditions = prepare_conditions(config, bundle)
    model = build_seeded_model(config, conditions, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)  # one kernel for all parameters
    step_loss = step_loss_function(model, config, device, compile)

    images = bundle.train.images.to(device)  # uint8, moved once
    gens = (
        stream_generator(config.seed, "order"),
        stream_generator(config.seed, "noise", device),
        stream_generator(config.seed, "binarize", device) if config.binarize == "dynamic" else None,
    )
    validation = validation_data(config, bundle, device)
    state = TrainingState(model, optimizer, LearningRate(optimizer, config), ModelSelection(config), gens)
    log, epoch, position = state.restore(checkpointing.load() if checkpointing else None)
    STOP.training = True
    try:
        while epoch < config.epochs and not state.selection.should_stop:
            started, lr = time.perf_counter() - (position.seconds if position else 0.0), state.schedule.current
            try:
                record = _train_epoch(step_loss, model, optimizer, images, conditions, config, epoch, gens, position)
            except _EpochStopped as stopped:
                if checkpointing:
                    checkpointing.save(state.snapshot(log, epoch, stopped.position))
                raise Preempted("terminated (SIGTERM) mid-epoch; the cell's state is saved") from None
            record["lr"], position = lr, None
            if validation:
                record |= validation_terms(model, *validation, config)
                state.selection.update(epoch + 1, record["val_loss"], model.state_dict)
            if config.curve_size:
                record |= curve_point(model, bundle, conditions, config.curve_size, device)
            record["epoch_seconds"] = time.perf_counter() - started  # the loop, validation and curve point
            log.append(record)
            if on_epoch:
                on_epoch(record)
            state.schedule.step(record.get("val_loss"))
            epoch += 1
            if checkpointing and checkpointing.due(epoch):
                checkpointing.save(state.snapshot(log, epoch))
        if checkpointing and not checkpointing.due(epoch):
            checkpointing.save(state.snapshot(log, epoch))  # a kill during evaluation redoes only the evaluation
    finally:
        STOP.training = False  # a SIGTERM from here on ends the process at once; the state above is saved
    if STOP.requested:
        raise Preempted("terminated (SIGTERM) after training; the cell's state is saved")
    state.selection.restore_best(model)
    second_stage = finish_training(model, config, images, conditions, validation)
    best = state.selection.best_epoch if validation else None
    summary = training_summary(log, config, state.selection.should_stop, best)
    if second_stage:
        summary["second_stage"] = second_stage
    if state.resumes:
        summary["resumed_from"] = state.resumes  # 0-based epoch and batches done when each resume began
    return TrainedCell(config, model, log, bundle, conditions, device, summary)


def finish_training(model: CVAE, config: CellConfig, images, conditions: PreparedConditions, validation) -> dict | None:
    """The selected model in eval mode, with its second stage fitted on the training images (the
    autoencoder's code density, the VQ-VAE's code prior; nothing for the VAE family)."""
    model.eval()
    if model.second_stage is None:
        return None  # the VAE family: no conditions to draw
    drawn = conditions.train(stream_generator(config.seed, "second_stage")).to(images.device)
    return model.after_training(images, drawn, config, validation)


@dataclass
class TrainingState:
    """Everything a cell's training carries from one batch to the next, saved and restored as one."""

    model: CVAE
    optimizer: torch.optim.Optimizer
    schedule: LearningRate
    selection: ModelSelection
    gens: tuple  # order, noise, binarisation (or None)
    resumes: list[dict] = field(default_factory=list)  # where each earlier run of this cell stopped

    def snapshot(self, log: list[dict], epoch: int, position: EpochPosition | None = None) -> dict:
        """`epoch`: the 0-based epoch to run next (mid-epoch: the one `position` stopped in)."""
        return {
            "epoch": epoch,
            "position": None if position is None else vars(position),
            "log": log,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "selection": self.selection.state_dict(),
            "generators": [g.get_state() if g is not None else None for g in self.gens],
            "resumes": self.resumes,
        }

    def restore(self, saved: dict | None) -> tuple[list[dict], int, EpochPosition | None]:
        """Load a snapshot; returns (log, epoch to run next, position in it); a fresh start without one."""
        if saved is None:
            return [], 0, None
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.schedule.load_state_dict(saved["schedule"])
        self.selection.load_state_dict(saved["selection"])
        for generator, generator_state in zip(self.gens, saved["generators"]):
            if generator is not None:
                generator.set_state(generator_state)
        position = saved["position"]
        self.resumes = [*saved["resumes"], {"epoch": saved["epoch"], "batch": position["batch"] if position else 0}]
        return saved["log"], saved["epoch"], None if position is None else EpochPosition(**position)


def validation_data(config: CellConfig, bundle: DatasetBundle, device) -> tuple | None:
    """The validation split's images (a fixed binary draw for dynamically binarised cells) and conditions,
    on the device; None without a validation split."""
    if bundle.validation is None:
        return None
    images = bundle.validation.images.to(device)
    if config.binarize == "dynamic":
        images = draw(images, stream_generator(0, "validation", device))
    conditions = prepare_conditions(config, replace(bundle, test=bundle.validation)).test.to(device)
    return images, conditions


@torch.no_grad()
def validation_terms(model: CVAE, images: torch.Tensor, conditions: torch.Tensor, config: CellConfig) -> dict:
    """The cell's loss at its full beta on the validation split, with the same noise every epoch; the
    negative ELBO (beta = 1) in nats where the decoder is a normalised density of the data."""
    model.eval()
    noise = stream_generator(config.seed, "validation", images.device)
    sums = torch.zeros(3, dtype=torch.float64, device=images.device)
    for part in torch.arange(len(images), device=images.device).split(VALIDATION_BATCH):
        x, c = images.index_select(0, part).float().div_(255), conditions[part]
        eps = torch.randn(len(part), config.latent_dim, generator=noise, device=x.device)
        logits, kl = model(x, c, eps=eps)
        terms = cvae_loss(logits.float(), x, kl.float(), config.recon_loss, config.beta, model.target_mask(c))
        sums += torch.stack([terms.total, terms.recon, terms.kl]).double() * len(part)
    return validation_record(*(sums / len(images)).tolist(), config)


def validation_record(loss: float, recon: float, kl: float, config: CellConfig) -> dict:
    regulariser = MODELS[config.model].regulariser
    record = {"val_loss": loss, "val_recon": recon, f"val_{regulariser}": kl}
    if regulariser == "kl" and likelihood_case(config)[0]:
        record["val_neg_elbo"] = recon + kl
    return record


def step_loss_function(model: CVAE, config: CellConfig, device: torch.device, compile: bool):
    """Forward pass and loss terms of one batch, under bf16 autocast when the cell asks for it."""
    autocast = config.precision == "bf16"

    def step(x, c, eps, beta):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            logits, kl = model(x, c, eps=eps)
        terms = cvae_loss(logits.float(), x, kl.float(), config.recon_loss, beta, model.target_mask(c))
        return terms.total, torch.stack([terms.total, terms.recon, terms.kl])

    return torch.compile(step) if compile else step


class _EpochStopped(Exception):  # noqa: N818
    def __init__(self, position: EpochPosition):
        self.position = position


def _train_epoch(step_loss, model, optimizer, images, conditions, config, epoch, gens, position=None) -> dict:
    """One pass; `gens` = (order, noise, binarisation or None): dynamic binarisation draws each batch anew.
    `position`: continue an epoch stopped part way (its order drawn again from the order generator's state at
    its start). A stop request (SIGTERM) after a batch raises _EpochStopped with the position reached."""
    order_gen, noise_gen, binarize_gen = gens
    if position:
        order_gen.set_state(position.order_at_start)
    order_at_start = order_gen.get_state()
    start = time.perf_counter() - (position.seconds if position else 0.0)
    model.train()
    beta = kl_weight(config.beta, epoch, config.kl_warmup_epochs)
    cond = conditions.train(order_gen).to(images.device)
    order = torch.randperm(len(images), generator=order_gen).to(images.device)
    sums = (
        position.sums.to(images.device, copy=True)
        if position
        else torch.zeros(3, dtype=torch.float64, device=images.device)
    )
    for index, batch in enumerate(order.split(config.batch_size)):
        if position and index < position.batch:
            continue  # done before the stop
        x = images.index_select(0, batch)  # a plain gather: 4x faster than images[batch]
        x = (draw(x, binarize_gen) if binarize_gen is not None else x).float().div_(255)
        eps = torch.randn(len(batch), config.latent_dim, generator=noise_gen, device=x.device)
        total, terms = step_loss(x, cond[batch], eps, beta)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        sums += terms.detach().double() * len(batch)
        if STOP.requested:
            raise _EpochStopped(EpochPosition(index + 1, sums, time.perf_counter() - start, order_at_start))
    seconds = time.perf_counter() - start
    return epoch_record(epoch, (sums / len(images)).tolist(), beta, seconds, len(images) / seconds, model.regulariser)


CURVE_BATCH = 500


@torch.no_grad()
def curve_point(model: CVAE, bundle: DatasetBundle, conditions: PreparedConditions, size: int, device) -> dict:
    """A learning-curve point: the reconstruction metrics of the evaluation stage (decoder mean at
    z = mu(x, c)) on the first `size` test images, measured in eval mode after an epoch."""
    model.eval()
    index = torch.arange(min(size, len(bundle.test)))
    batches = (
        (bundle.test.images[part].to(device).float().div_(255), conditions.test[part].to(device))
        for part in index.split(CURVE_BATCH)
    )
    scores = reconstruction_scores(model, batches)
    return {f"test_{name}": scores[name] for name in ("sse_image", "ssim", "ssim_gaussian")}


def epoch_record(
    epoch: int, terms: list[float], beta: float, seconds: float, images_per_second: float, regulariser: str = "kl"
) -> dict:
    """One epoch's log entry from its mean (loss, recon, regulariser: the KL, or the VQ-VAE's codebook
    terms, `vq`); a non-finite term fails the cell."""
    loss, recon, kl = terms
    if not all(math.isfinite(v) for v in terms):
        raise CellFailed(f"non-finite loss at epoch {epoch + 1}: loss={loss}, recon={recon}, {regulariser}={kl}")
    return {
        "epoch": epoch + 1,
        "loss": loss,
        "recon": recon,
        regulariser: kl,
        "beta": beta,
        "seconds": seconds,
        "images_per_second": images_per_second,
    }


def save_checkpoint(model: CVAE, path: Path) -> None:
    from benchmark.fileio import save_torch

    save_torch(path, model.state_dict())


def load_checkpoint(config: CellConfig, conditions: PreparedConditions, path: Path, device="cpu") -> CVAE:
    """The model in the memory layout its weights were saved in: a checkpoint from before conv models were
    built channels_last is measured again contiguous, as it was trained and first measured."""
    state = torch.load(path, map_location=device, weights_only=True)
    model = build_model(config, conditions.source)
    if not any(is_channels_last(t) for t in state.values()):
        model = model.to(memory_format=torch.contiguous_format)
    model.load_state_dict(state)
    return model.to(device).eval()


def is_channels_last(tensor: torch.Tensor) -> bool:
    """A 4-d tensor whose strides are channels_last's and not the contiguous ones (they coincide where
    channels or the spatial size are 1)."""
    return tensor.dim() == 4 and tensor.is_contiguous(memory_format=torch.channels_last) and not tensor.is_contiguous()


def load_stored_cell(store: CellStore, cell_id: str, data_dir=None, device="cpu") -> TrainedCell:
    """A done cell of a store, from its recorded config and its checkpoint: what evaluate, report and
    sample read."""
    config = CellConfig(**store.read(cell_id, "config.json")["cell"])
    return load_trained_cell(config, store.cell_dir(cell_id) / CHECKPOINT, data_dir, device)


def load_trained_cell(config: CellConfig, checkpoint: Path, data_dir=None, device="cpu", log=None) -> TrainedCell:
    """A stored cell as training left it: its data, conditions and the model from its checkpoint."""
    device = torch.device(device)
    bundle = cell_data(config, data_dir)
    conditions = prepare_conditions(config, bundle)
    model = load_checkpoint(config, conditions, checkpoint, device)
    return TrainedCell(config, model, log or [], bundle, conditions, device)

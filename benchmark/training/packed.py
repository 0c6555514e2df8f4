"""Packed training: several cells that share architecture and data but differ in seed, beta or
learning rate, trained together in one process with torch.func (stacked parameters, vmap).

Each packed cell keeps everything it would have alone: its initialisation seed, its data
order, its noise stream, its beta and its learning rate. Only the float rounding of the
batched kernels differs, so its losses equal those of training it alone within tolerance.
"""

from __future__ import annotations

import copy
import time

import torch
from torch.func import functional_call, stack_module_state, vmap

from benchmark.conditions import prepare_conditions
from benchmark.config import CellConfig
from benchmark.data import DatasetBundle, load_dataset
from benchmark.data.binarize import binarized
from benchmark.models.loss import cvae_loss, kl_weight
from benchmark.seeding import stream_generator
from benchmark.training.cpu import configure_cpu
from benchmark.training.schedules import LearningRate
from benchmark.training.selection import ModelSelection, training_summary
from benchmark.training.trainer import (
    VALIDATION_BATCH,
    CellFailed,
    TrainedCell,
    build_seeded_model,
    epoch_record,
    finish_training,
    resolve_device,
    validation_data,
    validation_record,
)

PACK_VARYING = ("seed", "beta", "lr")  # what may differ between the cells of one pack


def pack_key(config: CellConfig) -> str | None:
    """Cells with equal keys can be packed; None for cells that cannot (BatchNorm keeps per-call state,
    dynamic binarisation draws per cell in the trainer, a learning curve is measured by the trainer, an
    image task's loss counts its target pixels only, which the trainer's loss does)."""
    from benchmark.models.backbones import BACKBONES
    from benchmark.registry import MODELS

    if (
        not MODELS[config.model].packable
        or config.batchnorm
        or BACKBONES[config.backbone].builtin_batchnorm
        or config.binarize == "dynamic"
        or config.curve_size
        or config.condition == "image"
    ):
        return None
    fields = config.model_dump(mode="json", exclude=set(PACK_VARYING))
    return str(sorted(fields.items()))


class PerCellAdam:
    """torch.optim.Adam (fused, as the trainer uses it) over each cell's slice of the stacked
    parameters, one parameter group per cell with its own learning rate, so every cell gets the
    update it would get alone."""

    def __init__(self, params: dict[str, torch.Tensor], lrs: list[float]):
        self.stacked = list(params.values())
        self.slices = [[p.detach()[k] for p in self.stacked] for k in range(len(lrs))]  # views, updated in place
        self.optimizer = torch.optim.Adam(
            [{"params": cell, "lr": lr} for cell, lr in zip(self.slices, lrs)], lr=lrs[0], fused=True
        )

    def step(self) -> None:
        for k, cell in enumerate(self.slices):
            for view, stacked in zip(cell, self.stacked):
                view.grad = torch.empty_like(view).copy_(stacked.grad[k])  # the strides of its parameter
        self.optimizer.step()
        for stacked in self.stacked:
            stacked.grad = None


def noise_generators(configs: list[CellConfig], device: torch.device) -> list[torch.Generator]:
    """Each cell's own reparameterisation noise stream, seeded as when it trains alone."""
    return [stream_generator(c.seed, "noise", device) for c in configs]


def train_packed(
    configs: list[CellConfig], device="auto", data_dir=None, full: DatasetBundle | None = None, on_epoch=None
) -> list[TrainedCell | CellFailed]:
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    if device.type == "cpu":
        configure_cpu()
    base = configs[0]
    if len({pack_key(c) for c in configs}) != 1 or pack_key(base) is None:
        raise ValueError("cells of one pack must share everything but seed, beta and lr, and have no BatchNorm")
    full = full or binarized(load_dataset(base.dataset, base.image_size, data_dir), base.binarize, base.binarize_seed)
    if full.validation is None:
        full = full.hold_out_validation(base.val_size)
    indices = [full.train.seeded_index(c.train_size, c.seed) for c in configs]
    bundles = [full.with_train(full.train.subset(i)) for i in indices]
    conditions = [prepare_conditions(c, b) for c, b in zip(configs, bundles)]
    models = [build_seeded_model(c, cond, device) for c, cond in zip(configs, conditions)]
    params, buffers = stack_module_state(models)
    template = copy.deepcopy(models[0]).to("meta")

    def loss(p, b, x, c, eps, beta):
        logits, kl = functional_call(template, (p, b), (x, c), {"eps": eps})
        terms = cvae_loss(logits, x, kl, base.recon_loss, beta)
        return terms.total, torch.stack([terms.total, terms.recon, terms.kl])

    batched_loss = vmap(loss)
    optimizer = PerCellAdam(params, [c.lr for c in configs])
    images = full.train.images.to(device)
    index = torch.stack(indices).to(device)  # (K, N): the same N for every cell of a pack
    order_gens = [stream_generator(c.seed, "order") for c in configs]
    noise_gens = noise_generators(configs, device)
    logs: list[list[dict]] = [[] for _ in configs]
    failed: dict[int, CellFailed] = {}
    protocol = PackedProtocol(configs, optimizer, validation_data(base, bundles[0], device), device)
    for epoch in range(base.epochs):
        if protocol.all_stopped:
            break
        lrs = protocol.set_learning_rates()
        start = time.perf_counter()
        betas = torch.tensor([kl_weight(c.beta, epoch, c.kl_warmup_epochs) for c in configs], device=device)
        conds = torch.stack([cond.train(g).to(device) for cond, g in zip(conditions, order_gens)])
        orders = torch.stack([torch.randperm(index.shape[1], generator=g) for g in order_gens]).to(device)
        sums = torch.zeros(len(configs), 3, dtype=torch.float64, device=device)
        for batch in orders.split(base.batch_size, dim=1):
            x = images[torch.gather(index, 1, batch)].float().div_(255)  # (K, B, C, H, W)
            c = torch.gather(
                conds, 1, batch.view(*batch.shape, *[1] * (conds.dim() - 2)).expand(-1, -1, *conds.shape[2:])
            )
            eps = torch.stack(
                [torch.randn(batch.shape[1], base.latent_dim, generator=g, device=device) for g in noise_gens]
            )
            totals, terms = batched_loss(params, buffers, x, c, eps, betas)
            totals.sum().backward()
            optimizer.step()
            sums += terms.detach().double() * batch.shape[1]
        seconds = time.perf_counter() - start
        validated = protocol.validate(batched_loss, params, buffers)
        epoch_seconds = time.perf_counter() - start
        for k, terms_k in enumerate((sums / index.shape[1]).tolist()):
            if k in failed or k in protocol.stopped:
                continue
            ips = index.shape[1] * len(configs) / seconds
            try:
                record = {**epoch_record(epoch, terms_k, betas[k].item(), seconds, ips), "packed_with": len(configs)}
            except CellFailed as err:
                failed[k] = err
                continue
            record = record | {"lr": lrs[k]} | validated[k] | {"epoch_seconds": epoch_seconds}
            logs[k].append(record)
            if on_epoch:
                on_epoch(k, record)
            protocol.after_epoch(k, epoch + 1, record, lambda k=k: {n: t[k] for n, t in (params | buffers).items()})
    return [
        failed.get(k) or protocol.trained(k, models[k], params | buffers, logs[k], bundles[k], conditions[k])
        for k in range(len(configs))
    ]


class PackedProtocol:
    """Each packed cell's schedule, validation pass, early stopping and selection, as the trainer runs them
    for a cell alone: a stopped cell's learning rate is 0 (Adam leaves its weights as they are)."""

    def __init__(self, configs: list[CellConfig], optimizer: PerCellAdam, validation, device):
        self.configs, self.optimizer, self.validation, self.device = configs, optimizer, validation, device
        proxies = [torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=c.lr) for c in configs]
        self.schedules = [LearningRate(proxy, c) for proxy, c in zip(proxies, configs)]
        self.selections = [ModelSelection(c) for c in configs]
        self.stopped: set[int] = set()

    @property
    def all_stopped(self) -> bool:
        return len(self.stopped) == len(self.configs)

    def set_learning_rates(self) -> list[float]:
        lrs = [schedule.current for schedule in self.schedules]
        for k, group in enumerate(self.optimizer.optimizer.param_groups):
            group["lr"] = 0.0 if k in self.stopped else lrs[k]
        return lrs

    @torch.no_grad()
    def validate(self, batched_loss, params, buffers) -> list[dict]:
        """validation_terms for every cell at once: the same images, each cell's own noise and beta."""
        if self.validation is None:
            return [{} for _ in self.configs]
        images, conditions = self.validation
        base = self.configs[0]
        noise = [stream_generator(c.seed, "validation", self.device) for c in self.configs]
        betas = torch.tensor([c.beta for c in self.configs], device=self.device)
        sums = torch.zeros(len(self.configs), 3, dtype=torch.float64, device=self.device)
        for part in torch.arange(len(images), device=self.device).split(VALIDATION_BATCH):
            x = images.index_select(0, part).float().div_(255)
            c = conditions[part]
            x, c = x.expand(len(self.configs), *x.shape), c.expand(len(self.configs), *c.shape)
            eps = torch.stack([torch.randn(len(part), base.latent_dim, generator=g, device=self.device) for g in noise])
            _, terms = batched_loss(params, buffers, x, c, eps, betas)
            sums += terms.double() * len(part)
        return [validation_record(*terms, config) for terms, config in zip((sums / len(images)).tolist(), self.configs)]

    def after_epoch(self, k: int, epoch: int, record: dict, snapshot) -> None:
        if "val_loss" in record:
            self.selections[k].update(epoch, record["val_loss"], snapshot)
        self.schedules[k].step(record.get("val_loss"))
        if self.selections[k].should_stop:
            self.stopped.add(k)

    def trained(self, k: int, model, stacked: dict, log, bundle, conditions) -> TrainedCell:
        selection, config = self.selections[k], self.configs[k]
        best = selection.best_state if selection.keep_best and selection.best_state is not None else None
        with torch.no_grad():  # named_* skip the second name of a shared module, as stack_module_state does
            for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
                tensor.copy_(best[name] if best else stacked[name][k])
        finish_training(
            model, config, bundle.train.images.to(self.device), conditions, None
        )  # packable: no prior stage
        summary = training_summary(log, config, selection.should_stop, selection.best_epoch or None)
        return TrainedCell(config, model, log, bundle, conditions, self.device, summary)

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
from benchmark.training.cpu import configure_cpu
from benchmark.training.selection import training_summary
from benchmark.training.trainer import (
    NOISE_STREAM,
    ORDER_STREAM,
    CellFailed,
    TrainedCell,
    build_seeded_model,
    epoch_record,
    resolve_device,
    stream_seed,
)

PACK_VARYING = ("seed", "beta", "lr")  # what may differ between the cells of one pack


def pack_key(config: CellConfig) -> str | None:
    """Cells with equal keys can be packed; None for cells that cannot (BatchNorm keeps per-call state,
    dynamic binarisation draws per cell in the trainer, a learning curve is measured by the trainer, an
    image task's loss counts its target pixels only, which the trainer's loss does; the trainer alone holds
    out a validation split and runs schedules, early stopping and best-epoch selection, so far)."""
    from benchmark.models.backbones import BACKBONES

    if (
        config.batchnorm
        or BACKBONES[config.backbone].builtin_batchnorm
        or config.binarize == "dynamic"
        or config.curve_size
        or config.condition == "image"
        or config.val_size
        or config.schedule != "constant"
        or config.patience is not None
        or config.select != "last"
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
                view.grad = stacked.grad[k].contiguous()
        self.optimizer.step()
        for stacked in self.stacked:
            stacked.grad = None


def noise_generators(configs: list[CellConfig], device: torch.device) -> list[torch.Generator]:
    """Each cell's own reparameterisation noise stream, seeded as when it trains alone."""
    return [torch.Generator(device=device).manual_seed(stream_seed(c.seed, NOISE_STREAM)) for c in configs]


def train_packed(
    configs: list[CellConfig], device="auto", data_dir=None, full: DatasetBundle | None = None, on_epoch=None
) -> list[TrainedCell | CellFailed]:
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    if device.type == "cpu":
        configure_cpu()
    base = configs[0]
    if len({pack_key(c) for c in configs}) != 1 or pack_key(base) is None:
        raise ValueError("cells of one pack must share everything but seed, beta and lr, and have no BatchNorm")
    full = full or binarized(load_dataset(base.dataset, base.image_size, data_dir), base.binarize)
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
    order_gens = [torch.Generator().manual_seed(stream_seed(c.seed, ORDER_STREAM)) for c in configs]
    noise_gens = noise_generators(configs, device)
    logs: list[list[dict]] = [[] for _ in configs]
    failed: dict[int, CellFailed] = {}
    for epoch in range(base.epochs):
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
        for k, terms_k in enumerate((sums / index.shape[1]).tolist()):
            if k in failed:
                continue
            ips = index.shape[1] * len(configs) / seconds
            try:
                record = {**epoch_record(epoch, terms_k, betas[k].item(), seconds, ips), "packed_with": len(configs)}
            except CellFailed as err:
                failed[k] = err
                continue
            logs[k].append(record)
            if on_epoch:
                on_epoch(k, record)
    return [
        failed.get(k)
        or _unstacked(configs[k], models[k], params, buffers, k, logs[k], bundles[k], conditions[k], device)
        for k in range(len(configs))
    ]


def _unstacked(config, model, params, buffers, k, log, bundle, conditions, device) -> TrainedCell:
    with torch.no_grad():  # named_* skip the second name of a shared module, as stack_module_state does
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            tensor.copy_((params | buffers)[name][k])
    model.eval()
    return TrainedCell(config, model, log, bundle, conditions, device, training_summary(log, config))

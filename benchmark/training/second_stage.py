"""A model's second stage, trained once its networks are trained and selected: the VQ-VAE's code prior.

The prior learns p(codes | c) on the code grids of the training images (the autoencoder frozen, in eval
mode), with Adam at the cell's learning rate and batch size, for `prior_epochs` (default: the cell's
epochs), and, where the cell holds out a validation split, its own validation loss (the prior's negative
log-likelihood of the validation images' codes, nats per image), early stopping and best-epoch selection
under the cell's patience and select. Deterministic: the order comes from the cell's code_prior stream.
"""

from __future__ import annotations

import torch

from benchmark.seeding import stream_generator
from benchmark.training.selection import ModelSelection, training_summary

CODE_BATCH = 500  # images encoded at once


@torch.no_grad()
def code_grids(model, images: torch.Tensor, conditions: torch.Tensor) -> torch.Tensor:
    return torch.cat(
        [
            model.codes(images[part].float().div(255), conditions[part])
            for part in torch.arange(len(images), device=images.device).split(CODE_BATCH)
        ]
    )


@torch.no_grad()
def mean_nll(prior, codes: torch.Tensor, conditions: torch.Tensor) -> float:
    total = sum(
        prior.nll(codes[p], conditions[p]).double().sum().item() for p in torch.arange(len(codes)).split(CODE_BATCH)
    )
    return total / len(codes)


def train_code_prior(model, images, conditions, config, validation) -> dict:
    """Fit model.code_prior; returns its training summary (as a cell's) with its epoch log."""
    prior = model.code_prior
    codes = code_grids(model, images, conditions)
    held_out = None
    if validation is not None:
        held_out = code_grids(model, *validation), validation[1]
    budget = config.prior_epochs or config.epochs
    selection = ModelSelection(config)
    optimizer = torch.optim.Adam(prior.parameters(), lr=config.lr)
    order_gen = stream_generator(config.seed, "code_prior")
    log = []
    for epoch in range(budget):
        prior.train()
        total = 0.0
        for batch in torch.randperm(len(codes), generator=order_gen).split(config.batch_size):
            loss = prior.nll(codes[batch], conditions[batch]).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        record = {"epoch": epoch + 1, "loss": total / len(codes)}
        prior.eval()
        if held_out is not None:
            record["val_loss"] = mean_nll(prior, *held_out)
            selection.update(epoch + 1, record["val_loss"], prior.state_dict)
        log.append(record)
        if selection.should_stop:
            break
    selection.restore_best(prior)
    prior.eval()
    summary = training_summary(
        log, config.model_copy(update={"epochs": budget}), selection.should_stop, selection.best_epoch or None
    )
    return {**summary, "log": log}

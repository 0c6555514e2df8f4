"""Early stopping, model selection and the convergence record of a cell.

The trainer hands `ModelSelection` each epoch's validation loss; it keeps the best epoch's weights (when
the cell selects `best_val`), says when to stop (no improvement larger than `min_delta` for `patience`
epochs), and `training_summary` writes what happened: epochs run, the epoch measured, why training
stopped and how much the loss still improved over its last epochs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

# The best loss still improving by more than this fraction over the last epochs (the window below) marks
# a cell as not converged. 0.2%: about 0.2 nats of a 90-nat MNIST negative ELBO.
CONVERGENCE_TOLERANCE = 0.002
MIN_WINDOW = 3  # epochs; without early stopping the window is max(MIN_WINDOW, 10% of the epochs run)


class ModelSelection:
    def __init__(self, config):
        self.patience = config.patience
        self.min_delta = config.min_delta
        self.keep_best = config.select == "best_val"
        self.best_loss = math.inf
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.stale_epochs = 0

    def update(self, epoch: int, val_loss: float, snapshot: Callable[[], dict[str, torch.Tensor]]) -> None:
        """After 1-based `epoch`: remember it (`snapshot()`: its weights) if its validation loss improved by
        more than min_delta."""
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.stale_epochs = val_loss, epoch, 0
            if self.keep_best:
                self.best_state = {k: v.detach().clone() for k, v in snapshot().items()}
        else:
            self.stale_epochs += 1

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.stale_epochs >= self.patience

    def state_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("best_loss", "best_epoch", "best_state", "stale_epochs")}

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)

    def restore_best(self, model: torch.nn.Module) -> None:
        if self.keep_best and self.best_state is not None:
            model.load_state_dict(self.best_state)


def training_summary(log: list[dict], config, stopped_early: bool = False, best_epoch: int | None = None) -> dict:
    """What a cell's training did, from its epoch log: measured on the validation loss where there is one,
    else on the training loss (then `measured_on` says so). `best_epoch`: the selection's (min_delta applied)."""
    key = "val_loss" if log and "val_loss" in log[0] else "loss"
    losses = [entry[key] for entry in log]
    best = best_epoch or (min(range(len(losses)), key=losses.__getitem__) + 1 if losses else 0)
    window = config.patience or max(MIN_WINDOW, math.ceil(0.1 * len(losses)))
    improvement = None
    if len(losses) > window:
        before, overall = min(losses[:-window]), min(losses)
        improvement = (before - overall) / abs(overall) if overall else 0.0
    converged = stopped_early or (improvement is not None and improvement <= CONVERGENCE_TOLERANCE)
    return {
        "epochs_run": len(log),
        "epoch_budget": config.epochs,
        "stopped": "early_stopping" if stopped_early else "epoch_budget",
        "best_epoch": best,
        "selected_epoch": best if config.select == "best_val" else len(log),
        "measured_on": "validation" if key == "val_loss" else "training",
        "window": window,
        "improvement_in_window": improvement,  # relative drop of the best loss over the last `window` epochs
        "converged": converged,
    }

"""Learning-rate schedules, a registered axis: torch's own schedulers, stepped once per epoch.

Each entry builds the scheduler for an optimizer from the cell's fields, and says which fields it
ignores (so they do not change its id) and whether it needs the validation loss.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.optim import lr_scheduler

from benchmark.registry import SCHEDULES

SCHEDULE_FIELDS = ("milestones", "gamma", "lr_min", "plateau_patience")  # the fields schedules read


@dataclass(frozen=True)
class Schedule:
    build: Callable  # (optimizer, config) -> torch scheduler
    uses: tuple[str, ...] = ()  # which of SCHEDULE_FIELDS it reads
    needs_validation: bool = False

    @property
    def ignores(self) -> tuple[str, ...]:
        return tuple(f for f in SCHEDULE_FIELDS if f not in self.uses)


SCHEDULES.register("constant")(Schedule(lambda optimizer, config: lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)))
# pythae's recipe: MultiStepLR stepped once per epoch, lr * gamma after each milestone epoch
SCHEDULES.register("multistep")(
    Schedule(
        lambda optimizer, config: lr_scheduler.MultiStepLR(optimizer, list(config.milestones), config.gamma),
        uses=("milestones", "gamma"),
    )
)
SCHEDULES.register("cosine")(
    Schedule(
        lambda optimizer, config: lr_scheduler.CosineAnnealingLR(optimizer, config.epochs, config.lr_min),
        uses=("lr_min",),
    )
)
SCHEDULES.register("plateau")(
    Schedule(
        lambda optimizer, config: lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=config.gamma, patience=config.plateau_patience
        ),
        uses=("gamma", "plateau_patience"),
        needs_validation=True,
    )
)


class LearningRate:
    """The cell's schedule over its optimizer: `current` for this epoch, `step(val_loss)` after it."""

    def __init__(self, optimizer: torch.optim.Optimizer, config):
        self.optimizer = optimizer
        self.scheduler = SCHEDULES[config.schedule].build(optimizer, config)

    @property
    def current(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def step(self, val_loss: float | None) -> None:
        with warnings.catch_warnings():
            # a cell resumed at an epoch's end steps its schedule before this optimizer object has stepped
            warnings.filterwarnings("ignore", re.escape("Detected call of `lr_scheduler.step()` before"), UserWarning)
            if isinstance(self.scheduler, lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(val_loss)
            else:
                self.scheduler.step()

    def state_dict(self) -> dict:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.scheduler.load_state_dict(state)

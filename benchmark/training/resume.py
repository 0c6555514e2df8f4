"""Mid-cell checkpoints: a cell's whole training state, so a killed cell resumes where it was and ends with
the metrics of an uninterrupted run.

The trainer writes the state every `every` epochs, after training ends (so a kill during evaluation redoes
only the evaluation), and, when the process is asked to stop (SIGTERM, what cluster schedulers send before
they kill a job), at the next batch boundary before it exits. The state holds the weights, the optimiser,
the schedule, the model selection (best weights, patience), every random generator and the epoch log; mid
epoch also the position in the epoch: the order generator's state when the epoch began (the epoch's order
and conditions are drawn again from it), the batches done and their loss sums.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch

from benchmark.errors import Preempted
from benchmark.fileio import save_torch

FORMAT = 1  # of the state file; a state of another format is not resumed from


@dataclass(frozen=True)
class Checkpointing:
    path: Path  # the cell's state file
    identity: str  # the cell's id: a state written for another cell is never resumed from
    every: int = 1  # epochs between states; 0: only when training ends or the process is asked to stop
    origin: dict = field(default_factory=dict)  # the code commit and device kind a state must come from

    def due(self, epochs_done: int) -> bool:
        return self.every > 0 and epochs_done % self.every == 0

    def save(self, state: dict) -> None:
        save_torch(self.path, {"format": FORMAT, "cell": self.identity, "origin": self.origin, **state})

    def load(self) -> dict | None:
        """The saved state, or None when there is none this run can continue: none for this cell, unreadable,
        or written by other code (another package fingerprint: runner/provenance.py) or on another kind of
        device (`origin`: its generators' states and the arithmetic differ), which start over."""
        if not self.path.exists():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - written atomically, so never cut short; anything unreadable starts over
            return None
        if not isinstance(state, dict) or state.get("format") != FORMAT or state.get("cell") != self.identity:
            return None
        return state if state.get("origin") == self.origin else None


@dataclass
class EpochPosition:
    """Where an epoch was stopped: the batches done, their sums, the seconds spent, and the order generator's
    state at the epoch's start."""

    batch: int
    sums: torch.Tensor
    seconds: float
    order_at_start: torch.Tensor


class StopRequest:
    """SIGTERM sets a flag that the training loop reads after each batch; outside training (evaluation,
    storing) it raises Preempted at once, since the state saved after training lets the next run resume."""

    def __init__(self):
        self.requested = False
        self.signals: set[int] = set()  # the signals that asked
        self.training = False
        self.exit_when_idle = False

    def install(self, exit_when_idle: bool = False) -> bool:
        """Handle SIGTERM in this process from now on (main thread only); returns whether it could.
        `exit_when_idle`: a worker process, which outside training ends at once and quietly."""
        if threading.current_thread() is not threading.main_thread():
            return False
        self.requested, self.signals, self.exit_when_idle = False, set(), exit_when_idle
        signal.signal(signal.SIGTERM, self._on_signal)
        return True

    @contextlib.contextmanager
    def handling(self):
        """Handle SIGTERM while the block runs, then put back the handler there was."""
        previous = signal.getsignal(signal.SIGTERM)
        installed = self.install()
        try:
            yield
        finally:
            if installed:
                signal.signal(signal.SIGTERM, previous)

    def _on_signal(self, signum, frame) -> None:
        self.requested = True
        self.signals.add(signum)
        if not self.training:
            if self.exit_when_idle:
                os._exit(EXIT_TERMINATED)
            raise Preempted("terminated (SIGTERM)")


EXIT_TERMINATED = 128 + signal.SIGTERM  # what a shell reports for a process ended by SIGTERM


STOP = StopRequest()

"""The seeded trainer: one resolved cell config in, a trained model and its log out."""

from benchmark.training.trainer import CellFailed, TrainedCell, resolve_device, train_cell

__all__ = ["CellFailed", "TrainedCell", "resolve_device", "train_cell"]

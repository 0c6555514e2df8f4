"""The cell store: results/<cell id>/ with config, log, metrics, images and checkpoint."""

from benchmark.store.cells import CellStatus, CellStore

__all__ = ["CellStatus", "CellStore"]

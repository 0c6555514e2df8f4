"""Ablation grids: YAML -> validated spec -> fully resolved cells."""

from benchmark.grid.spec import Cell, Grid, load_grid, single_cell_grid

__all__ = ["Cell", "Grid", "load_grid", "single_cell_grid"]

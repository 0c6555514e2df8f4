"""`bench sample`: a grid of samples from a trained cell for a condition given as text or a label."""

from __future__ import annotations

from pathlib import Path

import torch

from benchmark.drawing import completion_grid, display_scale, grid_png, upscaled_png
from benchmark.errors import BenchError
from benchmark.fileio import atomic_write
from benchmark.store import CellStatus, CellStore
from benchmark.training.trainer import load_stored_cell


def image_condition_for(cell: dict, conditions, image: str | None) -> tuple[torch.Tensor, int]:
    """An image-task cell's condition for --image test:INDEX, and the index."""
    if image is None:
        raise BenchError(f"cell completes images ({cell['task']}): give --image test:INDEX")
    split, _, index = image.partition(":")
    if split != "test" or not index.isdigit() or int(index) >= len(conditions.test):
        raise BenchError(f"--image {image!r}: expected test:INDEX with INDEX from 0 to {len(conditions.test) - 1}")
    return conditions.test[int(index)], int(index)


def condition_for(config: dict, bundle, text: str | None, label: int | None) -> tuple[torch.Tensor, str]:
    """The raw condition the cell's model takes, and a description of it."""
    if (text is None) == (label is None):
        raise BenchError("give exactly one of --text or --label")
    cell = config["cell"]
    if cell["condition"] == "text":
        if text is None:
            raise BenchError(f"cell conditions on captions ({cell['dataset']}): give --text, not --label")
        from benchmark.conditions.clip_text import text_encoder

        return text_encoder(cell["text_encoder"], cell["text_normalize"]).embed([text])[0], f"caption {text!r}"
    if label is not None:
        if not 0 <= label < bundle.num_classes:
            raise BenchError(f"--label {label}: {cell['dataset']} has classes 0..{bundle.num_classes - 1}")
        return torch.tensor(label), f"class {label} ({bundle.class_names[label]})"
    from benchmark.conditions.keywords import keyword_table

    index = keyword_table(cell["dataset"]).match(text)
    return torch.tensor(index), f"{text!r} -> class {index} ({bundle.class_names[index]})"


def sample_grid(
    store: CellStore,
    cell_id: str,
    text: str | None,
    label: int | None,
    n: int,
    seed: int,
    out: Path,
    data_dir=None,
    scale: int | None = None,
    image: str | None = None,
) -> str:
    """`scale`: enlarge the grid by this integer factor (None: as reports do, to at least 112 px per image).
    `image` (test:INDEX), for image-task cells: the visible input, n completions and the truth, in a row."""
    status = store.status(cell_id)
    if status == CellStatus.DAMAGED:
        raise BenchError(f"cell {cell_id} in {store.root} is damaged ({store.damage(cell_id)}); bench run redoes it")
    if status != CellStatus.DONE or not (store.cell_dir(cell_id) / "model.pt").exists():
        known = sorted(p.parent.name for p in store.root.glob("*/model.pt"))
        raise BenchError(f"no trained cell {cell_id!r} in {store.root}; trained cells: {', '.join(known) or 'none'}")
    trained = load_stored_cell(store, cell_id, data_dir)
    model, bundle, conditions = trained.model, trained.bundle, trained.conditions
    config = store.read(cell_id, "config.json")
    if config["cell"]["condition"] == "image":
        condition, index = image_condition_for(config["cell"], conditions, image)
        truth = bundle.test.images[index : index + 1].float() / 255
        images = completion_grid(model, truth, condition[None], torch.Generator().manual_seed(seed), n)
        nrow, described = len(images), f"test image {index}: its visible input, {n} completions and the truth"
    else:
        if image is not None:
            raise BenchError(
                f"--image is for image-task cells; cell {cell_id} conditions on {config['cell']['condition']}"
            )
        condition, described = condition_for(config, bundle, text, label)
        images = model.sample(condition.unsqueeze(0).expand(n, *condition.shape), torch.Generator().manual_seed(seed))
        nrow = max(1, int(n**0.5))
    scale = scale or display_scale(images.shape[-1])
    png = upscaled_png(grid_png(images, nrow), scale)
    atomic_write(out, lambda tmp: tmp.write_bytes(png))
    return f"{out}: {n} samples of cell {cell_id} for {described}, seed {seed}"

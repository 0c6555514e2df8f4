"""The data-set registry and the in-memory bundle every stage works from.

A bundle holds uint8 image tensors (N, C, H, W) at the requested size, with
labels (class data sets) or captions (COCO). Processed tensors are cached on
disk keyed by (data set, source files, split, size), so the second load is fast.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field, replace
from pathlib import Path

import torch
import yaml

from benchmark import paths
from benchmark.config import IMAGE_SIZES
from benchmark.data import coco, idx, synthetic
from benchmark.data.images import resize_square
from benchmark.errors import BenchError
from benchmark.fileio import save_torch
from benchmark.registry import DATASETS


@dataclass
class Split:
    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor | None = None  # int64 (N,)
    captions: list[list[str]] | None = None  # every caption of each image

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: torch.Tensor) -> Split:
        return Split(
            images=self.images[index],
            labels=None if self.labels is None else self.labels[index],
            captions=None if self.captions is None else [self.captions[i] for i in index.tolist()],
        )

    def seeded_index(self, size: int | None, seed: int) -> torch.Tensor:
        """Indices of a seeded subset of `size` images (all of them when size is None), in order."""
        if size is None or size >= len(self):
            return torch.arange(len(self))
        generator = torch.Generator().manual_seed(seed)
        return torch.randperm(len(self), generator=generator)[:size].sort().values

    def seeded_subset(self, size: int | None, seed: int) -> Split:
        if size is None or size >= len(self):
            return self
        return self.subset(self.seeded_index(size, seed))


@dataclass
class DatasetBundle:
    name: str
    image_size: int
    channels: int
    class_names: tuple[str, ...] | None  # None for caption data sets
    train: Split
    test: Split
    source: dict = field(default_factory=dict)  # where it came from, for provenance
    validation: Split | None = None  # held out of the train split (hold_out_validation)

    @property
    def num_classes(self) -> int | None:
        return None if self.class_names is None else len(self.class_names)

    def carve_validation(self, size: int, seed: int) -> tuple[Split, Split]:
        """Split train into (train, validation) with a seeded permutation."""
        if not 0 < size < len(self.train):
            raise BenchError(f"validation size {size} must be between 1 and {len(self.train) - 1}")
        order = torch.randperm(len(self.train), generator=torch.Generator().manual_seed(seed))
        return self.train.subset(order[size:].sort().values), self.train.subset(order[:size].sort().values)

    def hold_out_validation(self, size: int) -> DatasetBundle:
        """The last `size` images of the train split as the validation split, the rest as train: the same
        images for every cell of the data set, whatever its seed, and never the test split."""
        if not size:
            return self
        if not 0 < size < len(self.train):
            raise BenchError(f"val_size {size}: must leave training images ({self.name} has {len(self.train)})")
        cut = len(self.train) - size
        return replace(
            self,
            train=self.train.subset(torch.arange(cut)),
            validation=self.train.subset(torch.arange(cut, cut + size)),
        )

    def with_train(self, train: Split) -> DatasetBundle:
        return replace(self, train=train)


DatasetLoader = Callable[[Path, int], DatasetBundle]


Checksums = Callable[[Path, str], str]  # (data dir, split) -> "OK", "OK (n files)" or what is wrong


@dataclass(frozen=True)
class DatasetEntry:
    """Everything the suite knows of a data set, in its one registration: its loader, the facts cell configs
    are checked against before anything loads, how `bench data check` verifies its files, and the keyword
    table that maps a short text to one of its classes (`bench sample --text`)."""

    load: DatasetLoader
    channels: int
    conditions: tuple[str, ...]  # the condition kinds its annotations support
    _: KW_ONLY
    classes: int | None = None  # number of classes of a labelled data set; None: captions
    train_images: int | None = None  # size of the train split when fixed (bounds train_size)
    folder: str | None = None  # its folder in the data directory; None: generated, nothing to check
    checksums: Checksums | None = None
    check_size: int = 28  # image size `bench data check` measures it at
    keywords: Mapping[str, list[str]] | None = None  # class name -> synonyms, in class order

    def __post_init__(self) -> None:
        if ("label" in self.conditions) != (self.classes is not None):
            raise ValueError(f"a data set with conditions {self.conditions} needs classes exactly when it has labels")


LABELLED = ("label", "keyword", "image")  # what a labelled image data set supports
KEYWORDS = yaml.safe_load(Path(__file__).with_name("keywords.yaml").read_text())  # the built-in tables


def load_dataset(name: str, image_size: int, data_dir: str | Path | None = None) -> DatasetBundle:
    if image_size not in IMAGE_SIZES:
        raise BenchError(f"image size {image_size} not supported; choose one of {IMAGE_SIZES}")
    return DATASETS[name].load(paths.data_dir(data_dir), image_size)


def _cached(key_parts: list[str], build: Callable[[], dict]) -> dict:
    key = hashlib.sha256("|".join(key_parts).encode()).hexdigest()[:20]
    path = paths.cache_dir() / "tensors" / f"{key_parts[0]}-{key}.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    value = build()
    save_torch(path, value)
    return value


def _idx_loader(name: str, source: idx.IdxSource) -> DatasetLoader:
    def load(root: Path, image_size: int) -> DatasetBundle:
        splits = {}
        for split in ("train", "test"):
            image_file, label_file = (root / source.folder / f for f in source.files(split))
            for f in (image_file, label_file):
                idx.ensure_file(source, root, f.name)

            def build(split=split) -> dict:
                images, labels = idx.load_idx_split(source, root, split, verify=False)
                tensor = resize_square(torch.from_numpy(images.copy()).unsqueeze(1), image_size)
                return {"images": tensor, "labels": torch.from_numpy(labels.astype("int64"))}

            key = [name, split, str(image_size), source.sha256[image_file.name]]
            splits[split] = Split(**_cached(key, build))
        return DatasetBundle(
            name=name,
            image_size=image_size,
            channels=1,
            class_names=source.class_names,
            train=splits["train"],
            test=splits["test"],
            source={"root": str(root / source.folder), "sha256": dict(source.sha256)},
        )

    return load


def _idx_entry(name: str, source: idx.IdxSource) -> DatasetEntry:
    return DatasetEntry(
        _idx_loader(name, source),
        channels=1,
        conditions=LABELLED,
        classes=len(source.class_names),
        train_images=60_000,
        folder=source.folder,
        checksums=source.checksums,
        keywords=KEYWORDS[name],
    )


DATASETS.register("fashion_mnist")(_idx_entry("fashion_mnist", idx.FASHION_MNIST))
DATASETS.register("mnist")(_idx_entry("mnist", idx.MNIST))


def load_synthetic(root: Path, image_size: int) -> DatasetBundle:
    parts = {}
    for split, (images, labels) in synthetic.splits().items():
        parts[split] = Split(resize_square(images, image_size), labels)
    return DatasetBundle(
        name="synthetic",
        image_size=image_size,
        channels=1,
        class_names=synthetic.CLASS_NAMES,
        train=parts["train"],
        test=parts["test"],
        source={"generator": f"benchmark.data.synthetic, seed {synthetic.SEED}"},
    )


DATASETS.register("synthetic")(
    DatasetEntry(
        load_synthetic,
        channels=1,
        conditions=LABELLED,
        classes=len(synthetic.CLASS_NAMES),
        train_images=synthetic.TRAIN_IMAGES,
        keywords=KEYWORDS["synthetic"],
    )
)


def load_coco(root: Path, image_size: int) -> DatasetBundle:
    coco_root = root / "coco-mini" if (root / "coco-mini").exists() else root / "coco"
    splits = {}
    for split in ("train", "test"):
        ann = coco.annotation_file(coco_root, split)
        stamp = f"{ann.stat().st_size}:{ann.stat().st_mtime_ns}" if ann.exists() else "missing"

        def build(split=split) -> dict:
            images, captions = coco.read_coco_split(coco_root, split, image_size)
            return {"images": images, "captions": captions}

        key = ["coco", str(coco_root.resolve()), split, str(image_size), stamp]
        splits[split] = Split(**_cached(key, build))
    return DatasetBundle(
        name="coco",
        image_size=image_size,
        channels=3,
        class_names=None,
        train=splits["train"],
        test=splits["test"],
        source={"root": str(coco_root)},
    )


DATASETS.register("coco")(
    DatasetEntry(
        load_coco, channels=3, conditions=("text",), folder="coco-mini", checksums=coco.checksums, check_size=64
    )
)

"""Data sets as in-memory uint8 tensors: IDX (Fashion-MNIST, MNIST) and COCO captions."""

from benchmark.data.datasets import DATASETS, DatasetBundle, Split, load_dataset

__all__ = ["DATASETS", "DatasetBundle", "Split", "load_dataset"]

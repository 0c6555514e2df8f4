"""The domain classifier behind `fid_domain`, `kid_domain` and `cond_acc`.

A small CNN per data set, trained on its train split with RECIPE and shipped with the package
(`instruments/`, listed with sha256 and test accuracy in `instruments/instruments.json`): float
rounding differs between CPU models, so a classifier trained on first use would be a different
instrument on every machine. Its key (data set + weights hash) is recorded in every cell's protocol.
`bench instrument train --dataset X` builds a new one, which gets a new key. It works at 28x28:
images of other sizes are resized to 28 (bilinear, antialiased) before it sees them.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from benchmark.data import DatasetBundle, idx, load_dataset
from benchmark.errors import BenchError
from benchmark.fileio import atomic_write, write_json

RECIPE = {"arch": "conv16-conv32-fc128", "epochs": 5, "batch_size": 256, "lr": 2e-3, "seed": 0, "version": 1}
INPUT_SIZE = 28
INSTRUMENT_DIR = Path(__file__).parent / "instruments"
MANIFEST = INSTRUMENT_DIR / "instruments.json"


class DomainClassifier(nn.Module):
    feature_dim = 128

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(32 * 49, self.feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(self.feature_dim, num_classes)

    @staticmethod
    def prepare(x: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 1] of any size -> 28x28."""
        if x.shape[-1] != INPUT_SIZE:
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer activations: what the Frechet distance compares."""
        return self.body(self.prepare(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@dataclass
class FittedClassifier:
    model: DomainClassifier
    test_accuracy: float
    key: str  # identifies the classifier in caches of features computed with it

    @torch.no_grad()
    def run(self, images: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 or float images -> (features float64, predicted class)."""
        feats, preds = [], []
        device = next(self.model.parameters()).device
        for batch in images.split(batch_size):
            x = batch.to(device)
            x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
            f = self.model.features(x)
            feats.append(f.double().cpu())
            preds.append(self.model.head(f).argmax(1).cpu())
        return torch.cat(feats), torch.cat(preds)


def conditional_accuracy(predicted: torch.Tensor, asked: torch.Tensor, class_names) -> tuple[float, dict]:
    """Share of images classified as the class that was asked for, overall and per class."""
    per_class = {
        name: (predicted[asked == k] == k).double().mean().item() if (asked == k).any() else None
        for k, name in enumerate(class_names)
    }
    return (predicted == asked).double().mean().item(), per_class


def _instruments() -> dict:
    return json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}


def has_domain_classifier(dataset: str) -> bool:
    """Whether an instrument ships for the data set (its files are checked when it is loaded)."""
    return dataset in _instruments()


def domain_classifier(dataset: str, data_dir=None, device: str | torch.device = "cpu") -> FittedClassifier:
    """The shipped, hash-checked classifier of a data set: the same instrument on every machine."""
    entry = _instruments().get(dataset)
    if entry is None:
        raise BenchError(
            f"no domain classifier ships for data set {dataset!r} (have: {', '.join(_instruments())}); "
            f"build one with: bench instrument train --dataset {dataset}"
        )
    weights = INSTRUMENT_DIR / entry["file"]
    if not weights.exists() or idx.sha256_of(weights) != entry["sha256"]:
        raise BenchError(f"{weights}: missing or altered (expected sha256 {entry['sha256']}); restore it from git")
    model = DomainClassifier(entry["channels"], len(entry["class_names"]))
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.eval().to(device)
    return FittedClassifier(model, entry["test_accuracy"], f"{dataset}-{entry['sha256'][:12]}")


def train_instrument(dataset: str, data_dir=None) -> dict:
    """Train a new classifier with RECIPE and register it as the data set's instrument (a new key)."""
    bundle = load_dataset(dataset, INPUT_SIZE, data_dir)
    model = DomainClassifier(bundle.channels, bundle.num_classes)
    start = time.perf_counter()
    _train(model, bundle)
    _, predicted = FittedClassifier(model, 0.0, "").run(bundle.test.images)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    name = f"{dataset}-{digest[:12]}.pt"
    atomic_write(INSTRUMENT_DIR / name, lambda tmp: tmp.write_bytes(buffer.getvalue()))
    entry = {
        "file": name,
        "sha256": digest,
        "channels": bundle.channels,
        "class_names": list(bundle.class_names),
        "test_accuracy": (predicted == bundle.test.labels).double().mean().item(),
        "recipe": RECIPE,
        "train_seconds": round(time.perf_counter() - start, 1),
        "torch": torch.__version__,
    }
    write_json(MANIFEST, {**_instruments(), dataset: entry})
    return entry


def _train(model: DomainClassifier, bundle: DatasetBundle) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RECIPE["seed"])
        model.apply(lambda m: m.reset_parameters() if hasattr(m, "reset_parameters") else None)
    images, labels = bundle.train.images, bundle.train.labels
    order_gen = torch.Generator().manual_seed(RECIPE["seed"])
    steps_per_epoch = -(-len(images) // RECIPE["batch_size"])
    optimizer = torch.optim.Adam(model.parameters(), lr=RECIPE["lr"])
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, RECIPE["lr"], total_steps=RECIPE["epochs"] * steps_per_epoch
    )
    model.train()
    with torch.random.fork_rng(devices=[]):  # dropout draws from the global generator
        torch.manual_seed(RECIPE["seed"] + 1)
        for _ in range(RECIPE["epochs"]):
            for batch in torch.randperm(len(images), generator=order_gen).split(RECIPE["batch_size"]):
                loss = F.cross_entropy(model(images[batch].float() / 255), labels[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
    model.eval()

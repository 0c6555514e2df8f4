"""The domain classifier behind `fid_domain`, `kid_domain` and `cond_acc`.

A small CNN trained once per data set on its train split with a fixed seed and
cached on disk, keyed by the data files and this recipe. It works at 28x28:
images of other sizes are resized to 28 (bilinear, antialiased) before it sees them.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from benchmark import paths
from benchmark.data import DatasetBundle, load_dataset
from benchmark.fileio import save_torch, write_json

RECIPE = {"arch": "conv16-conv32-fc128", "epochs": 5, "batch_size": 256, "lr": 2e-3, "seed": 0, "version": 1}
INPUT_SIZE = 28


class DomainClassifier(nn.Module):
    feature_dim = 128

    def __init__(self, channels: int = 1, num_classes: int = 10):
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


def _cache_key(bundle: DatasetBundle) -> str:
    blob = json.dumps({"recipe": RECIPE, "dataset": bundle.name, "source": bundle.source.get("sha256")}, sort_keys=True)
    return f"{bundle.name}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def domain_classifier(dataset: str, data_dir=None, device: str | torch.device = "cpu") -> FittedClassifier:
    """Load the cached classifier of a data set, training it first if needed."""
    bundle = load_dataset(dataset, INPUT_SIZE, data_dir)
    key = _cache_key(bundle)
    folder = paths.cache_dir() / "classifiers"
    weights, info = folder / f"{key}.pt", folder / f"{key}.json"
    model = DomainClassifier(bundle.channels, bundle.num_classes)
    if not weights.exists():
        _train(model, bundle, weights, info)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.eval().to(device)
    return FittedClassifier(model, json.loads(info.read_text())["test_accuracy"], key)


def _train(model: DomainClassifier, bundle: DatasetBundle, weights: Path, info: Path) -> None:
    start = time.perf_counter()
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
    fitted = FittedClassifier(model, 0.0, "")
    _, predicted = fitted.run(bundle.test.images)
    accuracy = (predicted == bundle.test.labels).double().mean().item()
    save_torch(weights, model.state_dict())
    write_json(info, {"test_accuracy": accuracy, "recipe": RECIPE, "seconds": time.perf_counter() - start})

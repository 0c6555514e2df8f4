"""Inception-v3 features through clean-fid ('clean' mode: PIL bicubic resize to 299, then the network).

The weights file (inception-2015-12-05.pt) is read from a configurable path or
clean-fid's own default place; it is never downloaded here. When it is absent,
the Inception metrics are reported as unavailable with the reason.
"""

from __future__ import annotations

import hashlib
import platform
from pathlib import Path

import numpy as np
import torch

WEIGHTS_NAME = "inception-2015-12-05.pt"
WEIGHTS_SHA256 = "f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4"


class Unavailable(Exception):
    """A metric cannot be computed here; the message says why and what would fix it."""


def default_weights_path() -> Path:
    # clean-fid keeps the file in /tmp (the current folder on Windows)
    return Path("./" if platform.system() == "Windows" else "/tmp") / WEIGHTS_NAME


class InceptionExtractor:
    def __init__(self, weights: str | Path | None, device: torch.device):
        from cleanfid.inception_torchscript import InceptionV3W
        from cleanfid.resize import build_resizer

        path = Path(weights) if weights else default_weights_path()
        if not path.exists():
            raise Unavailable(
                f"Inception weights not found at {path} ({WEIGHTS_NAME}, sha256 {WEIGHTS_SHA256[:16]}...); "
                "put the file there or set eval.inception_weights"
            )
        if path.name != WEIGHTS_NAME:
            raise Unavailable(f"{path}: clean-fid loads the weights only under the name {WEIGHTS_NAME}")
        self.model = InceptionV3W(str(path.parent), download=False).to(device).eval()
        self.resize = build_resizer("clean")
        self.device = device
        self.key = "inception-" + hashlib.sha256(path.read_bytes()).hexdigest()[:12]

    @torch.no_grad()
    def features(self, images: torch.Tensor, batch_size: int = 100) -> np.ndarray:
        """uint8 (N, C, H, W) -> (N, 2048); grey images are repeated to 3 channels."""
        out = []
        for batch in images.split(batch_size):
            if batch.shape[1] == 1:
                batch = batch.repeat(1, 3, 1, 1)
            resized = np.stack([self.resize(img) for img in batch.permute(0, 2, 3, 1).cpu().numpy()])
            tensor = torch.from_numpy(resized).permute(0, 3, 1, 2).to(self.device)
            out.append(self.model(tensor).double().cpu().numpy())
        return np.concatenate(out)

"""Long text -> a fixed vector with an open_clip text tower (the write-up's method).

The text is split into sentences; each sentence is tokenised (CLIP's 77-token
limit is why sentences go one by one) and encoded; the sentence embeddings are
averaged, optionally L2-normalised (each sentence, then the mean). Embeddings are
cached on disk per (encoder, normalisation), keyed by the text.

Encoder specs: `MODEL:TAG` (open_clip pretrained tag, e.g. ViT-B-32:openai),
`MODEL:/path/to/checkpoint.pt` (a local file), or `MODEL` alone: random weights
from a fixed seed, i.e. an untrained encoder. `cvae-tiny-clip` is a small config
shipped here for machines without pretrained weights.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import re
from pathlib import Path

import torch

from benchmark import paths
from benchmark.errors import BenchError
from benchmark.fileio import save_torch

CONFIG_DIR = Path(__file__).with_name("clip_configs")
RANDOM_INIT_SEED = 0


def split_sentences(text: str) -> list[str]:
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]
    if not sentences:
        raise BenchError(f"empty text {text!r}: nothing to encode")
    return sentences


class TextEncoder:
    def __init__(self, spec: str, normalize: bool = True):
        import open_clip

        open_clip.add_model_config(CONFIG_DIR)
        self.spec, self.normalize = spec, normalize
        model_name, _, pretrained = spec.partition(":")
        if model_name not in open_clip.list_models():
            raise BenchError(f"text_encoder {spec!r}: unknown open_clip model {model_name!r}")
        self.pretrained = pretrained or None
        self.model = self._load(open_clip, model_name, self.pretrained)
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.dim = self.model.text_projection.shape[1] if hasattr(self.model, "text_projection") else None
        self.calls = 0  # encoder forward passes, so tests can see the cache work
        weights = self.pretrained or f"random-seed{RANDOM_INIT_SEED}"
        if self.pretrained and Path(self.pretrained).exists():
            weights = hashlib.sha256(Path(self.pretrained).read_bytes()).hexdigest()[:16]
        self.key = hashlib.sha256(f"{model_name}|{weights}|{normalize}".encode()).hexdigest()[:16]

    @property
    def trained(self) -> bool:
        return self.pretrained is not None

    @staticmethod
    def _load(open_clip, model_name: str, pretrained: str | None):
        if pretrained and ("/" in pretrained or pretrained.endswith((".pt", ".bin", ".safetensors"))):
            if not Path(pretrained).exists():
                raise BenchError(f"text_encoder '{model_name}:{pretrained}': checkpoint file not found")
        with torch.random.fork_rng(devices=[]), _quiet_root_logger():
            torch.manual_seed(RANDOM_INIT_SEED)
            try:
                model = open_clip.create_model(model_name, pretrained=pretrained, pretrained_text=False)
            except Exception as err:  # offline hubs and missing files fail in many ways
                raise BenchError(
                    f"text_encoder '{model_name}:{pretrained}': CLIP weights not loaded "
                    f"({type(err).__name__}); offline, pass a local checkpoint: '{model_name}:/path/to/file.pt'"
                ) from None
        return model.eval()

    @torch.no_grad()
    def _encode_one(self, text: str) -> torch.Tensor:
        sentences = split_sentences(text)
        self.calls += 1
        features = self.model.encode_text(self.tokenizer(sentences)).float()
        if self.normalize:
            features = torch.nn.functional.normalize(features, dim=-1)
        mean = features.mean(0)
        return torch.nn.functional.normalize(mean, dim=0) if self.normalize else mean

    def embed(self, texts: list[str]) -> torch.Tensor:
        """(len(texts), dim) embeddings, from the disk cache where already computed."""
        path = paths.cache_dir() / "text_embeddings" / f"{self.key}.pt"
        cache: dict[str, torch.Tensor] = torch.load(path, weights_only=True) if path.exists() else {}
        keys = [hashlib.sha256(t.encode()).hexdigest()[:32] for t in texts]
        missing = {k: t for k, t in zip(keys, texts) if k not in cache}
        for key, text in missing.items():
            cache[key] = self._encode_one(text)
        if missing:
            save_torch(path, cache)
        return torch.stack([cache[k] for k in keys])


@contextlib.contextmanager
def _quiet_root_logger():
    """open_clip announces random initialisation on the root logger; our notes already say so."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


@functools.lru_cache(maxsize=4)
def text_encoder(spec: str, normalize: bool = True) -> TextEncoder:
    return TextEncoder(spec, normalize)

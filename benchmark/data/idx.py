"""The IDX format of MNIST-style data sets: reading, checksums, download.

Files keep their original names under `<data dir>/<folder>/`, the layout of
`../shared/data`. Each file is verified by SHA-256 before it is parsed.
"""

from __future__ import annotations

import gzip
import shutil
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.errors import BenchError
from benchmark.fileio import sha256_of

IMAGE_MAGIC = 0x00000803
LABEL_MAGIC = 0x00000801


@dataclass(frozen=True)
class IdxSource:
    """One MNIST-style data set: where its files live and what they must hash to."""

    folder: str
    torchvision_class: str
    class_names: tuple[str, ...]
    sha256: dict[str, str]  # file name -> checksum

    def files(self, split: str) -> tuple[str, str]:
        prefix = "train" if split == "train" else "t10k"
        return f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"

    def checksums(self, root: Path, split: str) -> str:
        """`bench data check`: the state of the split's two files under the data directory `root`."""
        states = []
        for name in self.files(split):
            path = root / self.folder / name
            if not path.exists():
                states.append(f"{name}: missing")
            elif not checksum_ok(self, path):
                states.append(f"{name}: MISMATCH")
        return "; ".join(states) or "OK"


def checksum_ok(source: IdxSource, path: Path) -> bool:
    return sha256_of(path) == source.sha256[path.name]


def _read_gz(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except (EOFError, OSError, zlib.error) as err:
        raise BenchError(f"{path}: not a readable gzip file ({err})") from None


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Parse one IDX file (gzip) into a uint8 array, checking the magic number and size."""
    raw = _read_gz(path)
    if len(raw) < 8:
        raise BenchError(f"{path}: too short to be an IDX file ({len(raw)} bytes)")
    found = struct.unpack(">I", raw[:4])[0]
    if found != magic:
        raise BenchError(f"{path}: wrong IDX magic number 0x{found:08x}, expected 0x{magic:08x}")
    ndim = found & 0xFF
    shape = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise BenchError(f"{path}: IDX header says shape {tuple(shape)} but the file holds {body.size} values")
    return body.reshape(shape)


def ensure_file(source: IdxSource, root: Path, name: str, verify: bool = True) -> Path:
    """Return the path of one file, downloading it if absent, failing clearly if corrupt."""
    path = root / source.folder / name
    if not path.exists():
        _download(source, root, name)
    if verify and not checksum_ok(source, path):
        raise BenchError(
            f"{path}: checksum mismatch (expected sha256 {source.sha256[name]}); the file is "
            "corrupt or truncated: delete it to download it again, or copy the original"
        )
    return path


def _download(source: IdxSource, root: Path, name: str) -> None:
    """Fetch the original files through torchvision's data set class (needs internet)."""
    import torchvision.datasets as tvd

    target = root / source.folder / name
    try:
        with tempfile.TemporaryDirectory() as tmp:
            getattr(tvd, source.torchvision_class)(tmp, download=True)
            downloaded = next(Path(tmp).rglob(name))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(downloaded, target)
    except Exception as err:  # any network or mirror failure is one user-facing message
        raise BenchError(
            f"{target}: file missing (expected sha256 {source.sha256[name]}) and the download "
            f"failed ({type(err).__name__}); copy the original {name} there, or point "
            "--data-dir / BENCH_DATA_DIR at a folder that has it"
        ) from None


def load_idx_split(source: IdxSource, root: Path, split: str, verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    image_name, label_name = source.files(split)
    image_path = ensure_file(source, root, image_name, verify)
    label_path = ensure_file(source, root, label_name, verify)
    images = read_idx(image_path, IMAGE_MAGIC)
    labels = read_idx(label_path, LABEL_MAGIC)
    if len(images) != len(labels):
        raise BenchError(f"{label_path}: {len(labels)} labels for {len(images)} images in {image_path.name}")
    return images, labels


FASHION_MNIST = IdxSource(
    folder="fashion-mnist",
    torchvision_class="FashionMNIST",
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    sha256={
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
)
MNIST = IdxSource(
    folder="mnist",
    torchvision_class="MNIST",
    class_names=tuple(str(d) for d in range(10)),
    sha256={
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
)

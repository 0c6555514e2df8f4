import gzip
import json
import shutil
import struct

import numpy as np
import pytest
import torch

from benchmark.data import idx, load_dataset
from benchmark.data.coco import read_coco_split
from benchmark.data.images import resize_square
from benchmark.errors import BenchError


def test_environment_imports_torchvision_v2_and_cleanfid():
    from cleanfid import fid
    from torchvision.transforms import v2

    assert callable(fid.frechet_distance)
    assert v2.Resize(8)(torch.zeros(1, 16, 16, dtype=torch.uint8)).shape == (1, 8, 8)


@pytest.mark.parametrize(
    ("name", "train_mean", "test_mean"),
    [("fashion_mnist", 0.28604, 0.28685), ("mnist", 0.13066, 0.13251)],
)
def test_real_idx_data_sets(shared_data, name, train_mean, test_mean):
    bundle = load_dataset(name, 28, shared_data)
    assert bundle.train.images.shape == (60000, 1, 28, 28)
    assert bundle.test.images.shape == (10000, 1, 28, 28)
    assert bundle.train.images.dtype == torch.uint8
    assert bundle.train.labels.shape == (60000,)
    assert set(bundle.train.labels.unique().tolist()) == set(range(10))
    assert bundle.train.images.double().mean().item() / 255 == pytest.approx(train_mean, abs=1e-5)
    assert bundle.test.images.double().mean().item() / 255 == pytest.approx(test_mean, abs=1e-5)


def test_resize_to_every_supported_size(shared_data):
    for size in (32, 64):
        bundle = load_dataset("fashion_mnist", size, shared_data)
        assert bundle.test.images.shape == (10000, 1, size, size)
        assert abs(bundle.test.images.double().mean().item() / 255 - 0.28685) < 0.01
    square = torch.randint(0, 256, (2, 3, 40, 60), dtype=torch.uint8)
    assert resize_square(square, 256).shape == (2, 3, 256, 256)


def test_validation_split_is_seeded_and_disjoint(shared_data):
    bundle = load_dataset("mnist", 28, shared_data)
    train, val = bundle.carve_validation(5000, seed=3)
    train2, val2 = bundle.carve_validation(5000, seed=3)
    assert len(train) == 55000 and len(val) == 5000
    assert torch.equal(val.images, val2.images)
    _, val_other = bundle.carve_validation(5000, seed=4)
    assert not torch.equal(val.labels, val_other.labels)


def test_coco_mini_loads_with_all_captions(shared_data):
    bundle = load_dataset("coco", 64, shared_data)
    assert bundle.train.images.shape == (80, 3, 64, 64)
    assert bundle.test.images.shape == (79, 3, 64, 64)
    assert sum(len(c) for c in bundle.train.captions) == 400
    assert sum(len(c) for c in bundle.test.captions) == 395
    again = load_dataset("coco", 64, shared_data)  # from the tensor cache
    assert torch.equal(again.test.images, bundle.test.images)
    assert again.test.captions == bundle.test.captions


def _write_idx(path, magic, shape, values=None):
    n = int(np.prod(shape))
    body = np.zeros(n, dtype=np.uint8) if values is None else values
    with gzip.open(path, "wb") as handle:
        handle.write(struct.pack(">I", magic) + struct.pack(f">{len(shape)}I", *shape))
        handle.write(body.tobytes())


def test_truncated_gzip_is_a_clear_error(tmp_path):
    good = tmp_path / "good.gz"
    noise = np.random.default_rng(0).integers(0, 256, 50 * 28 * 28, dtype=np.uint8)
    _write_idx(good, idx.IMAGE_MAGIC, (50, 28, 28), noise)
    truncated = tmp_path / "train-images-idx3-ubyte.gz"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(BenchError, match="not a readable gzip file"):
        idx.read_idx(truncated, idx.IMAGE_MAGIC)


def test_wrong_magic_number_is_a_clear_error(tmp_path):
    path = tmp_path / "x.gz"
    _write_idx(path, idx.LABEL_MAGIC, (10,))
    with pytest.raises(BenchError, match="wrong IDX magic number 0x00000801, expected 0x00000803"):
        idx.read_idx(path, idx.IMAGE_MAGIC)


def test_label_count_must_match_image_count(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", idx.IMAGE_MAGIC, (5, 28, 28))
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", idx.LABEL_MAGIC, (4,))
    with pytest.raises(BenchError, match="4 labels for 5 images"):
        idx.load_idx_split(idx.MNIST, tmp_path, "test", verify=False)


def test_corrupt_file_fails_checksum_with_expected_digest(tmp_path, shared_data):
    shutil.copytree(shared_data / "mnist", tmp_path / "mnist")
    target = tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz"
    target.chmod(0o644)
    target.write_bytes(target.read_bytes()[:-10])
    with pytest.raises(BenchError) as err:
        load_dataset("mnist", 28, tmp_path)
    assert "t10k-labels-idx1-ubyte.gz" in str(err.value)
    assert idx.MNIST.sha256["t10k-labels-idx1-ubyte.gz"] in str(err.value)


def test_missing_file_offline_names_file_and_checksum(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr("torchvision.datasets.MNIST", offline)
    with pytest.raises(BenchError) as err:
        load_dataset("mnist", 28, tmp_path)
    message = str(err.value)
    assert "train-images-idx3-ubyte.gz" in message and "download failed" in message
    assert idx.MNIST.sha256["train-images-idx3-ubyte.gz"] in message
    assert "\n" not in message


def test_coco_json_naming_a_missing_image(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "val2017").mkdir()
    annotations = {
        "images": [{"id": 1, "file_name": "000000000001.jpg", "height": 8, "width": 8}],
        "annotations": [{"id": 5, "image_id": 1, "caption": "a cat"}],
    }
    (tmp_path / "annotations" / "captions_val2017.json").write_text(json.dumps(annotations))
    with pytest.raises(BenchError, match="names image 000000000001.jpg, which is missing"):
        read_coco_split(tmp_path, "test", 64)


def test_unknown_data_set_lists_known_ones():
    with pytest.raises(BenchError, match="unknown data set 'cifar'; known: fashion_mnist, mnist"):
        load_dataset("cifar", 28)


def test_data_check_cli_reports_real_data(shared_data, cli):
    result = cli("data", "check", "--data-dir", str(shared_data))
    assert result.returncode == 0, result.stderr
    for text in ("60,000", "10,000", "0.2860", "0.2868", "0.1307", "0.1325", "400", "395"):
        assert text in result.stdout
    assert "MISMATCH" not in result.stdout


def test_data_check_cli_fails_on_corrupt_data(tmp_path, shared_data, cli):
    shutil.copytree(shared_data / "mnist", tmp_path / "mnist")
    target = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    target.chmod(0o644)
    target.write_bytes(b"junk")
    result = cli("data", "check", "--data-dir", str(tmp_path))
    assert result.returncode != 0
    assert "MISMATCH" in result.stdout
    assert "Traceback" not in result.stderr


def test_cli_version_and_unknown_dir(cli):
    assert cli("--version").stdout.startswith("bench ")
    result = cli("data", "check", "--data-dir", "/no/such/dir")
    assert result.returncode == 2
    assert result.stderr.startswith("error: /no/such/dir: no data set found")

"""CIFAR-10/100 and SVHN read tiny fake data sets written in their real on-disk layouts."""

from __future__ import annotations

import inspect
import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
import torchvision.datasets
from jsonargparse import ArgumentParser

from mixup_robust.data import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    ImageFolderDataModule,
    InMemoryDataModule,
    SVHNDataModule,
    TinyImageNetDataModule,
)
from tests.helpers.data import check_batches as _check_batches
from tests.helpers.data import rng as _rng

CLASSES = ["cat", "ant", "dog"]  # sorted: ant=0, cat=1, dog=2
WNIDS = [f"n{i:08d}" for i in range(200)]
COLORS = {5: (200, 30, 40), 17: (20, 180, 90), 150: (60, 70, 220)}  # class index -> RGB
CIFAR10_CLASSES = "airplane automobile bird cat deer dog frog horse ship truck".split()


# ----------------------------------------------------------------------------- signatures
@pytest.mark.parametrize(
    "cls",
    [
        CIFAR10DataModule,
        CIFAR100DataModule,
        SVHNDataModule,
        TinyImageNetDataModule,
        ImageFolderDataModule,
    ],
)
def test_the_cli_sees_every_base_argument_with_its_type(cls: type) -> None:
    """Subclasses pass **kwargs to the base; jsonargparse must still expose every argument."""
    parser = ArgumentParser()
    parser.add_class_arguments(cls, "data")
    exposed = {action.dest.removeprefix("data.") for action in parser._actions}
    base = set(inspect.signature(InMemoryDataModule.__init__).parameters) - {"self"}
    assert base <= exposed
    config = parser.parse_args(["--data.batch_size", "7", "--data.val_size", "0.5"])
    assert config.data.batch_size == 7 and config.data.val_size == 0.5


# ----------------------------------------------------------------------------- CIFAR
def _write_cifar_batch(path: Path, data: np.ndarray, labels: list[int], key: str, raw: bool):
    entry = {"data": data.reshape(len(data), -1), key: labels, "batch_label": "fake"}
    if raw:  # keys as bytes, as the official files give them under encoding="bytes"
        entry = {k.encode(): v for k, v in entry.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(entry, protocol=2))


def _fake_cifar10(root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng, parts = _rng(1), []
    for i in range(1, 7):
        n = 3 if i < 6 else 5
        data = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, n)
        name = f"data_batch_{i}" if i < 6 else "test_batch"
        _write_cifar_batch(
            root / "cifar-10-batches-py" / name, data, labels.tolist(), "labels", i % 2 == 0
        )
        parts.append((data, labels))
    train = (np.concatenate([d for d, _ in parts[:5]]), np.concatenate([y for _, y in parts[:5]]))
    return {"train": train, "test": parts[5]}


def test_cifar10_reads_pickles_exactly(tmp_path: Path) -> None:
    expected = _fake_cifar10(tmp_path)
    dm = CIFAR10DataModule(root=str(tmp_path), batch_size=4)
    for split in ("train", "test"):
        images, labels = dm.arrays[split]
        assert images.dtype == torch.uint8 and images.shape == (len(expected[split][0]), 3, 32, 32)
        assert np.array_equal(images.numpy(), expected[split][0])
        assert np.array_equal(labels.numpy(), expected[split][1]) and labels.dtype == torch.int64
    assert len(dm.arrays["train"][1]) == 15 and len(dm.arrays["test"][1]) == 5
    _check_batches(dm, *dm.arrays["test"])


def test_cifar100_reads_fine_labels(tmp_path: Path) -> None:
    rng = _rng(2)
    expected = {}
    for split, n in (("train", 6), ("test", 4)):
        data = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        fine = [99, 0, 57, 12, 99, 3][:n]
        path = tmp_path / "cifar-100-python" / split
        _write_cifar_batch(path, data, fine, "fine_labels", split == "test")
        entry = pickle.loads(path.read_bytes())  # add the coarse labels that must be ignored
        entry["coarse_labels" if split == "train" else b"coarse_labels"] = [19] * n
        path.write_bytes(pickle.dumps(entry, protocol=2))
        expected[split] = (data, np.array(fine))
    dm = CIFAR100DataModule(root=str(tmp_path))
    assert dm.num_classes == 100
    for split in ("train", "test"):
        images, labels = dm.arrays[split]
        assert np.array_equal(images.numpy(), expected[split][0])
        assert labels.tolist() == expected[split][1].tolist()


def test_cifar_missing_files_say_where(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as error:
        CIFAR10DataModule(root=str(tmp_path)).arrays  # noqa: B018
    message = str(error.value)
    assert str(tmp_path / "cifar-10-batches-py" / "data_batch_1") in message
    assert "download: true" in message
    with pytest.raises(FileNotFoundError, match="cifar-100-python"):
        CIFAR100DataModule(root=str(tmp_path)).arrays  # noqa: B018


def test_cifar_download_goes_through_torchvision(tmp_path: Path, monkeypatch) -> None:
    calls = []

    def offline(root: str, download: bool = False, **kwargs) -> None:
        calls.append((root, download, kwargs))
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    dm = CIFAR10DataModule(root=str(tmp_path), download=True)
    with pytest.raises(RuntimeError, match="download") as error:
        dm.prepare_data()
    assert str(tmp_path / "cifar-10-batches-py" / "test_batch") in str(error.value)
    assert calls == [(str(tmp_path), True, {"train": False})]

    def fetch(root: str, download: bool = False, **kwargs) -> None:
        calls.append(root)
        _fake_cifar10(Path(root))

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", fetch)
    dm = CIFAR10DataModule(root=str(tmp_path), download=True)
    assert len(dm.arrays["test"][1]) == 5  # the first load fetches when prepare_data did not
    dm.prepare_data()  # files present: no second download
    assert calls[1:] == [str(tmp_path)]


# ----------------------------------------------------------------------------- SVHN
def _fake_svhn(root: Path, split: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng(seed)
    x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)  # (H, W, C, N) as in the .mat
    y = np.array([10, 1, 9, 10, 5, 2, 3][:n], dtype=np.uint8).reshape(n, 1)
    scipy.io.savemat(root / f"{split}_32x32.mat", {"X": x, "y": y})
    return x, y


def test_svhn_reads_mat_files_and_maps_ten_to_zero(tmp_path: Path) -> None:
    written = {
        "train": _fake_svhn(tmp_path, "train", 7, 3),
        "test": _fake_svhn(tmp_path, "test", 4, 4),
    }
    dm = SVHNDataModule(root=str(tmp_path), batch_size=3)
    assert dm.horizontal_flip is False
    for split, (x, y) in written.items():
        images, labels = dm.arrays[split]
        assert images.shape == (x.shape[3], 3, 32, 32) and images.dtype == torch.uint8
        for i in range(x.shape[3]):  # image i, channel c, row r, column w == X[r, w, c, i]
            assert np.array_equal(images[i].numpy(), x[:, :, :, i].transpose(2, 0, 1))
        assert labels.tolist() == [0 if v == 10 else int(v) for v in y[:, 0]]
    assert dm.arrays["test"][1].tolist() == [0, 1, 9, 0]
    _check_batches(dm, *dm.arrays["test"])
    with pytest.raises(ValueError, match="flip"):
        SVHNDataModule(root=str(tmp_path), horizontal_flip=True)


def test_svhn_missing_file_and_download(tmp_path: Path, monkeypatch) -> None:
    _fake_svhn(tmp_path, "train", 2, 5)
    with pytest.raises(FileNotFoundError, match=r"test_32x32.mat") as error:
        SVHNDataModule(root=str(tmp_path)).arrays  # noqa: B018
    assert str(tmp_path / "test_32x32.mat") in str(error.value)
    calls = []

    def fetch(root: str, split: str = "train", download: bool = False) -> None:
        calls.append(split)
        _fake_svhn(Path(root), split, 3, 6)

    monkeypatch.setattr(torchvision.datasets, "SVHN", fetch)
    dm = SVHNDataModule(root=str(tmp_path), download=True)
    dm.prepare_data()
    assert calls == ["test"]  # only the missing split is fetched
    assert len(dm.arrays["test"][1]) == 3


# ----------------------------------------------------------------------------- Tiny ImageNet

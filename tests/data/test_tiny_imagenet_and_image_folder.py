"""Tiny ImageNet and image folders (plain or zipped) read tiny fake data sets in real layouts."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mixup_robust.data import (
    ImageFolderDataModule,
    TinyImageNetDataModule,
)
from mixup_robust.data import tiny_imagenet as tiny_module
from mixup_robust.data.image_folder import open_archive
from tests.helpers.cli import REPO
from tests.helpers.cli import SHARED_DATA as SHARED
from tests.helpers.data import check_batches as _check_batches
from tests.helpers.data import rng as _rng

CLASSES = ["cat", "ant", "dog"]  # sorted: ant=0, cat=1, dog=2
WNIDS = [f"n{i:08d}" for i in range(200)]
COLORS = {5: (200, 30, 40), 17: (20, 180, 90), 150: (60, 70, 220)}  # class index -> RGB
CIFAR10_CLASSES = "airplane automobile bird cat deer dog frog horse ship truck".split()


def _jpeg(path: Path, color: tuple[int, ...], mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (64, 64), color if mode == "RGB" else color[0]).save(path, quality=95)


def _fake_tiny(root: Path) -> Path:
    folder = root / "tiny-imagenet-200"
    folder.mkdir(parents=True)
    shuffled = [WNIDS[i] for i in _rng(7).permutation(200)]  # the file order is not the index
    (folder / "wnids.txt").write_text("\n".join(shuffled) + "\n")
    for label, color in COLORS.items():
        for k in range(2):
            _jpeg(folder / "train" / WNIDS[label] / "images" / f"{WNIDS[label]}_{k}.JPEG", color)
    _jpeg(folder / "train" / WNIDS[17] / "images" / "gray.JPEG", (128,), mode="L")
    (folder / "train" / WNIDS[5] / f"{WNIDS[5]}_boxes.txt").write_text("ignored\n")
    annotations = [("val_0.JPEG", 150), ("val_1.JPEG", 5), ("val_2.JPEG", 17), ("val_3.JPEG", 5)]
    for name, label in annotations:
        _jpeg(folder / "val" / "images" / name, COLORS[label])
    (folder / "val" / "val_annotations.txt").write_text(
        "".join(f"{name}\t{WNIDS[label]}\t0\t0\t63\t63\n" for name, label in annotations)
    )
    return folder


def _near(images: torch.Tensor, color: tuple[int, ...]) -> bool:
    target = torch.tensor(color, dtype=torch.float32).view(3, 1, 1)
    return bool((images.float() - target).abs().max() <= 4)  # JPEG is lossy


def test_tiny_imagenet_layout_labels_and_pixels(tmp_path: Path) -> None:
    _fake_tiny(tmp_path)
    dm = TinyImageNetDataModule(root=str(tmp_path), batch_size=4)
    assert dm.class_names == WNIDS  # sorted wnids, not the order of wnids.txt
    train_images, train_labels = dm.arrays["train"]
    assert train_images.shape == (7, 3, 64, 64)
    assert train_labels.tolist() == [5, 5, 17, 17, 17, 150, 150]  # sorted by path
    gray = dm.files("train").index((f"train/{WNIDS[17]}/images/gray.JPEG", 17))
    for i, label in enumerate(train_labels.tolist()):
        assert _near(train_images[i], (128, 128, 128) if i == gray else COLORS[label])
    test_images, test_labels = dm.arrays["test"]
    assert test_labels.tolist() == [150, 5, 17, 5]  # val_0..val_3 by their annotations
    for image, label in zip(test_images, test_labels.tolist(), strict=True):
        assert _near(image, COLORS[label])
    _check_batches(dm, test_images, test_labels)


def test_tiny_imagenet_cache_is_written_and_reused(tmp_path: Path, monkeypatch) -> None:
    folder = _fake_tiny(tmp_path)
    first = TinyImageNetDataModule(root=str(tmp_path), cache=True).arrays
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == [
        "train_uint8.npz",
        "val_uint8.npz",
        "wnids.txt",
    ]  # no temporary file left behind

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although the cache is valid")

    monkeypatch.setattr(tiny_module, "decode_images", no_decoding)
    second = TinyImageNetDataModule(root=str(tmp_path), cache=True).arrays
    for split in ("train", "test"):
        assert all(torch.equal(a, b) for a, b in zip(first[split], second[split], strict=True))
    _jpeg(folder / "val" / "images" / "val_4.JPEG", COLORS[5])  # the listing changes
    with open(folder / "val" / "val_annotations.txt", "a") as file:
        file.write(f"val_4.JPEG\t{WNIDS[5]}\t0\t0\t63\t63\n")
    with pytest.raises(AssertionError, match="decoded"):
        TinyImageNetDataModule(root=str(tmp_path), cache=True).arrays  # noqa: B018


def test_tiny_imagenet_missing_and_bad_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as error:
        TinyImageNetDataModule(root=str(tmp_path)).arrays  # noqa: B018
    assert str(tmp_path / "tiny-imagenet-200" / "wnids.txt") in str(error.value)
    assert "tiny-imagenet-200.zip" in str(error.value)
    folder = _fake_tiny(tmp_path)
    (folder / "val" / "images" / "val_2.JPEG").unlink()
    with pytest.raises(FileNotFoundError, match=r"val_2.JPEG"):
        TinyImageNetDataModule(root=str(tmp_path)).arrays  # noqa: B018
    (folder / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99999999\t0\t0\t1\t1\n")
    with pytest.raises(ValueError, match="unknown wnid"):
        TinyImageNetDataModule(root=str(tmp_path)).arrays  # noqa: B018


# ----------------------------------------------------------------------------- image folders
def _fake_folder(root: Path, size: tuple[int, int] = (6, 5)) -> dict[str, dict[str, np.ndarray]]:
    """PNGs (lossless) of width 6, height 5 in train/<class>/ and test/<class>/."""
    rng, written = _rng(8), {}
    for split, n in (("train", 3), ("test", 2)):
        for name in CLASSES:
            for k in range(n):
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                path = root / split / name / f"{k:03d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(pixels).save(path)
                written[path.relative_to(root).as_posix()] = pixels
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    return written


def _zip_folder(folder: Path, archive: Path, top: str) -> None:
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                out.write(path, f"{top}/{path.relative_to(folder).as_posix()}")


def test_image_folder_exact_pixels_from_folder_and_zip(tmp_path: Path) -> None:
    written = _fake_folder(tmp_path / "set")
    _zip_folder(tmp_path / "set", tmp_path / "set.zip", "set-png")
    loaded = []
    for root in (tmp_path / "set", tmp_path / "set.zip"):
        dm = ImageFolderDataModule(root=str(root), batch_size=4)
        assert dm.class_names == ["ant", "cat", "dog"] and dm.num_classes == 3
        assert dm.image_shape == (3, 5, 6)  # (C, H, W) known before any decoding
        for split, n in (("train", 3), ("test", 2)):
            images, labels = dm.arrays[split]
            assert labels.tolist() == [0] * n + [1] * n + [2] * n
            for (name, label), image in zip(dm.files(split), images, strict=True):
                key = name.removeprefix("set-png/")
                assert key.startswith(f"{split}/{dm.class_names[label]}/")
                assert np.array_equal(image.numpy(), written[key].transpose(2, 0, 1))
        loaded.append(dm.arrays)
        _check_batches(dm, *dm.arrays["test"])
        _, pool_labels = dm.sampling_pool()
        assert pool_labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    for split in ("train", "test"):
        assert torch.equal(loaded[0][split][0], loaded[1][split][0])


def test_image_folder_options(tmp_path: Path) -> None:
    written = _fake_folder(tmp_path)
    limited = ImageFolderDataModule(root=str(tmp_path), limit_per_class=2)
    assert [name for name, _ in limited.files("train")][:2] == [
        "train/ant/000.png",
        "train/ant/001.png",
    ]
    assert len(limited.arrays["train"][1]) == 6 and len(limited.arrays["test"][1]) == 6
    gray = ImageFolderDataModule(root=str(tmp_path), channels=1)
    assert gray.image_shape == (1, 5, 6)
    expected = np.asarray(Image.fromarray(written["test/ant/000.png"]).convert("L"))
    assert np.array_equal(gray.arrays["test"][0][0, 0].numpy(), expected)
    resized = ImageFolderDataModule(root=str(tmp_path), image_size=4)
    assert resized.image_shape == (3, 4, 4) and resized.arrays["train"][0].shape == (9, 3, 4, 4)
    with pytest.raises(ValueError, match="channels"):
        ImageFolderDataModule(root=str(tmp_path), channels=2)


def test_image_folder_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        ImageFolderDataModule(root=str(missing))
    (tmp_path / "flat").mkdir()
    with pytest.raises(FileNotFoundError, match="train/<class>"):
        ImageFolderDataModule(root=str(tmp_path / "flat"))
    root = tmp_path / "set"
    _fake_folder(root)
    Image.new("RGB", (7, 7)).save(root / "test" / "dog" / "big.png")
    with pytest.raises(ValueError, match=r"big.png"):  # a size mismatch names the file
        ImageFolderDataModule(root=str(root)).arrays  # noqa: B018
    (root / "test" / "dog" / "big.png").unlink()
    (root / "test" / "eel").mkdir()
    Image.new("RGB", (6, 5)).save(root / "test" / "eel" / "0.png")
    with pytest.raises(ValueError, match="eel"):  # class folders must match between splits
        ImageFolderDataModule(root=str(root))


def test_real_cifar10_jpeg_zip() -> None:
    path = SHARED / "cifar10-jpeg.zip"
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared real CIFAR-10 JPEG export)")
    dm = ImageFolderDataModule(root=str(path), limit_per_class=20, batch_size=50)
    assert dm.class_names == CIFAR10_CLASSES and dm.image_shape == (3, 32, 32)
    assert dm.num_classes == 10
    # `listing` is the full listing (cheap: no decoding); limit_per_class applies in files().
    assert [len(dm.listing["test"][c]) for c in CIFAR10_CLASSES] == [1000] * 10
    assert [len(dm.listing["train"][c]) for c in CIFAR10_CLASSES] == [5000] * 10
    assert len(dm.files("train")) == len(dm.files("test")) == 200
    images, labels = dm.arrays["test"]
    assert images.shape == (200, 3, 32, 32) and labels.tolist() == sorted(list(range(10)) * 20)
    lossless = SHARED / "cifar10-lossless-subset.npz"
    if lossless.is_file():  # test/<class>/NNNN.jpg follows test_batch's order within a class
        with np.load(lossless) as data:
            x, y = data["x_test"], data["y_test"]
        originals = np.stack([x[y == c][:20] for c in range(10)]).reshape(200, 32, 32, 3)
        error = np.abs(images.numpy().astype(float) - originals.transpose(0, 3, 1, 2)).mean()
        assert error < 10, f"mean absolute error {error:.1f} / 255 against the originals"
    _check_batches(dm, images, labels)


def test_a_truncated_zip_is_called_damaged(tmp_path):
    archive = tmp_path / "data.zip"
    shutil.make_archive(str(tmp_path / "data"), "zip", REPO / "configs")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(ValueError, match="damaged or truncated"):
        with open_archive(archive):
            pass

"""Data that would change a run without a word is refused, naming the file: an empty class
folder (it would shift the later labels), an image that does not decode (named inside its
folder or zip), a CIFAR batch file that names code (never unpickled), a training split
smaller than one batch (Lightning would end the run at once with status 0)."""

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mixup_robust.data import CIFAR10DataModule, DigitsDataModule, ImageFolderDataModule
from mixup_robust.data.cifar import read_cifar_pickle
from mixup_robust.data.indexed_images import check_training_batches


def class_folders(root: Path, classes: list[str], per_class: int = 2) -> Path:
    for split in ("train", "test"):
        for name in classes:
            (root / split / name).mkdir(parents=True)
            for number in range(per_class):
                Image.new("L", (4, 4), 40 * number).save(root / split / name / f"{number}.png")
    return root


def zipped(folder: Path) -> Path:
    return Path(shutil.make_archive(str(folder), "zip", folder))


@pytest.mark.parametrize("as_zip", [False, True])
def test_an_empty_class_folder_is_refused(tmp_path, as_zip):
    root = class_folders(tmp_path / "set", ["ant", "cat", "dog"])
    for split in ("train", "test"):  # empty in both splits: formerly dropped, labels shifted
        for image in (root / split / "cat").iterdir():
            image.unlink()
    (root / "train" / "cat" / "notes.txt").write_text("no image here")
    source = zipped(root) if as_zip else root
    with pytest.raises(ValueError, match=r"class folder\(s\) test/cat, train/cat .* hold no image"):
        ImageFolderDataModule(root=str(source), channels=1)


@pytest.mark.parametrize("as_zip", [False, True])
@pytest.mark.parametrize("first", [True, False])
def test_an_image_that_does_not_decode_is_named(tmp_path, as_zip, first):
    root = class_folders(tmp_path / "set", ["ant", "cat"])
    broken = root / ("train/ant/0.png" if first else "test/cat/1.png")
    broken.write_bytes(b"not a png at all")
    source = zipped(root) if as_zip else root
    with pytest.raises(ValueError) as raised:
        ImageFolderDataModule(root=str(source), channels=1).arrays  # noqa: B018
    message = str(raised.value)
    assert broken.relative_to(root).as_posix() in message and str(source) in message
    assert "not an image PIL can identify" in message and "BytesIO" not in message
    assert raised.value.__cause__ is None  # the CLI shows the innermost error: this one


def write_batch(path: Path, entry: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(entry, protocol=2))


class Payload:
    """Unpickling it calls Path.touch: any code named by the file would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def test_a_cifar_batch_that_names_code_is_never_run(tmp_path):
    marker = tmp_path / "ran"
    folder = tmp_path / "cifar-10-batches-py"
    data = np.zeros((2, 3072), dtype=np.uint8)
    write_batch(folder / "data_batch_1", {"data": data, "labels": [1, 2], "x": Payload(marker)})
    for name in [f"data_batch_{i}" for i in range(2, 6)] + ["test_batch"]:
        write_batch(folder / name, {"data": data, "labels": [0, 1]})
    with pytest.raises(
        ValueError, match=r"data_batch_1 is not a plain CIFAR batch file: it names .*getattr"
    ):
        CIFAR10DataModule(root=str(tmp_path)).arrays  # noqa: B018
    assert not marker.exists()
    images, labels = read_cifar_pickle(folder / "test_batch", "labels")  # the plain ones load
    assert images.shape == (2, 3, 32, 32) and labels.tolist() == [0, 1]
    write_batch(folder / "test_batch", [data])
    with pytest.raises(ValueError, match="holds a list, not a CIFAR batch"):
        read_cifar_pickle(folder / "test_batch", "labels")


def test_a_training_split_smaller_than_a_batch_is_refused():
    digits = DigitsDataModule(batch_size=2048, val_size=0.1)
    digits.setup("test")  # evaluation needs no training batch
    with pytest.raises(ValueError, match="has 1294 images, fewer than batch_size=2048"):
        digits.setup("fit")
    check_training_batches(1294, 1, 1294, "Digits")  # exactly one batch is enough
    with pytest.raises(ValueError, match=r"324 images per device \(4 devices\)"):
        check_training_batches(1294, 4, 325, "Digits")

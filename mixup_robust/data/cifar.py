"""CIFAR-10 and CIFAR-100 from torchvision's on-disk format (the official python pickles)."""

import pickle
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from typing_extensions import override

from mixup_robust.data.base import Arrays
from mixup_robust.data.torchvision_format import TorchvisionFormatDataModule

# What a CIFAR batch file holds besides dicts, lists, str, bytes and numbers: numpy arrays and
# scalars (rebuilt through these functions, under numpy 1 and 2 names) and, in files pickled
# by Python 3 with protocol 2, bytes (through `_codecs.encode`). Nothing else is imported.
CIFAR_PICKLE_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
    }
)


class CifarUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR batch holds: plain containers and numpy arrays.

    `pickle.load` imports and calls whatever a file names, so a file put in the data folder
    could run any code; this refuses every other global before importing it.
    """

    @override
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in CIFAR_PICKLE_GLOBALS:
            raise pickle.UnpicklingError(
                f"it names {module}.{name}, which a CIFAR batch file never holds (only numpy "
                "arrays, lists, dicts, bytes, str and numbers); it was not loaded, since "
                "unpickling it could run code. Download the data set again."
            )
        return super().find_class(module, name)


def read_cifar_pickle(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads one CIFAR python-version batch: uint8 (N, 3, 32, 32) images and int64 labels.

    Accepts str keys (as torchvision reads them, `encoding="latin1"`) and bytes keys. Only
    numpy arrays and plain containers are unpickled (`CifarUnpickler`).

    Raises:
        ValueError: the file names other Python objects, or is no CIFAR batch.
    """
    with open(path, "rb") as file:
        try:
            entry = CifarUnpickler(file, encoding="latin1").load()
        except pickle.UnpicklingError as error:
            raise ValueError(f"{path} is not a plain CIFAR batch file: {error}") from None
    if not isinstance(entry, dict):
        raise ValueError(f"{path} holds a {type(entry).__name__}, not a CIFAR batch (a dict).")
    entry = {key.decode() if isinstance(key, bytes) else key: value for key, value in entry.items()}
    if "data" not in entry or label_key not in entry:
        raise ValueError(f"{path} lacks the 'data' or '{label_key}' entry of a CIFAR batch.")
    data = np.asarray(entry["data"], dtype=np.uint8)
    labels = np.asarray(entry[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise ValueError(f"{path}: expected (N, 3072) data and N labels, got {data.shape}.")
    return data.reshape(-1, 3, 32, 32), labels


class CIFAR10DataModule(TorchvisionFormatDataModule):
    """CIFAR-10: 50,000 train and 10,000 test RGB 32x32 images of 10 classes.

    Reads `<root>/cifar-10-batches-py/data_batch_1..5` and `test_batch` (what
    `torchvision.datasets.CIFAR10(root, download=True)` leaves there).

    Args:
        download: fetch the files with torchvision when they are missing.
    """

    num_classes = 10
    image_shape = (3, 32, 32)
    torchvision_name = "CIFAR10"
    download_url = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    folder = "cifar-10-batches-py"
    split_files: ClassVar[dict[str, list[str]]] = {
        "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"],
    }
    label_key = "labels"

    def __init__(
        self,
        root: str = "data",
        download: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        self.download = download

    @override
    def required_files(self, split: str) -> list[Path]:
        return [Path(self.root) / self.folder / name for name in self.split_files[split]]

    @override
    def load_split(self, split: str) -> Arrays:
        parts = [read_cifar_pickle(path, self.label_key) for path in self.check_files(split)]
        images = np.concatenate([images for images, _ in parts])
        labels = np.concatenate([labels for _, labels in parts])
        return torch.from_numpy(images), torch.from_numpy(labels)


class CIFAR100DataModule(CIFAR10DataModule):
    """CIFAR-100: 50,000 train and 10,000 test RGB 32x32 images of 100 (fine) classes.

    Reads `<root>/cifar-100-python/train` and `test` with their `fine_labels` (what
    `torchvision.datasets.CIFAR100(root, download=True)` leaves there).

    Args:
        download: fetch the files with torchvision when they are missing.
    """

    num_classes = 100
    torchvision_name = "CIFAR100"
    download_url = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    folder = "cifar-100-python"
    split_files: ClassVar[dict[str, list[str]]] = {"train": ["train"], "test": ["test"]}
    label_key = "fine_labels"

"""SVHN (cropped digits) from torchvision's on-disk format: `train_32x32.mat`, `test_32x32.mat`."""

from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.io import loadmat
from typing_extensions import override

from mixup_robust.data.base import Arrays
from mixup_robust.data.torchvision_format import TorchvisionFormatDataModule


class SVHNDataModule(TorchvisionFormatDataModule):
    """SVHN: 73,257 train and 26,032 test RGB 32x32 house-number digits of 10 classes.

    Reads `<root>/train_32x32.mat` and `<root>/test_32x32.mat` (what
    `torchvision.datasets.SVHN(root, split=..., download=True)` leaves there; the `extra`
    split is not used). As in torchvision, the files' label 10 (digit zero) becomes class 0.
    Flips are off: a mirrored digit is another glyph.

    Args:
        download: fetch the missing files with torchvision.
    """

    num_classes = 10
    image_shape = (3, 32, 32)
    flip_allowed = False
    torchvision_name = "SVHN"
    download_url = "http://ufldl.stanford.edu/housenumbers/"

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
        return [Path(self.root) / f"{split}_32x32.mat"]

    @override
    def download_calls(self) -> list[dict[str, Any]]:
        return [{"split": split} for split in ("train", "test") if self._missing((split,))]

    @override
    def load_split(self, split: str) -> Arrays:
        (path,) = self.check_files(split)
        mat = loadmat(path)
        images, labels = mat["X"], mat["y"].astype(np.int64).reshape(-1)
        if images.ndim != 4 or images.shape[:3] != (32, 32, 3) or images.shape[3] != len(labels):
            raise ValueError(f"{path}: expected X (32, 32, 3, N) and y (N, 1), got {images.shape}.")
        labels[labels == 10] = 0
        images = np.ascontiguousarray(images.transpose(3, 2, 0, 1), dtype=np.uint8)
        return torch.from_numpy(images), torch.from_numpy(labels)

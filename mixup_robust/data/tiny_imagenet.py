"""Tiny ImageNet (200 classes, 64x64 RGB) from the extracted `tiny-imagenet-200/` folder."""

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from typing_extensions import override

from mixup_robust.atomic import atomic_file
from mixup_robust.data.base import Arrays, InMemoryDataModule
from mixup_robust.data.image_folder import IMAGE_EXTENSIONS, decode_images, file_reader
from mixup_robust.data.torchvision_format import missing_files_error

_FOLDER = "tiny-imagenet-200"
_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"


class TinyImageNetDataModule(InMemoryDataModule):
    """Tiny ImageNet: 100,000 train and 10,000 labelled val RGB 64x64 images of 200 classes.

    Reads `<root>/tiny-imagenet-200/`: `wnids.txt` (the 200 WordNet ids),
    `train/<wnid>/images/*.JPEG`, and `val/images/*.JPEG` labelled by
    `val/val_annotations.txt` (tab-separated: file name, wnid, bounding box). The val split
    serves as the test split (the official test images are unlabelled and not read). Class
    indices follow the sorted wnids (`class_names`), as with torchvision's ImageFolder on
    `train/`, not the order of lines in `wnids.txt`. Grayscale JPEGs are converted to RGB.
    The ~110,000 JPEGs are decoded in a thread pool, which takes a while.

    Args:
        cache: keep the decoded uint8 pixels in `train_uint8.npz` and `val_uint8.npz` in
            `<root>/tiny-imagenet-200/` (written atomically) and reuse them while the listed
            files and labels are unchanged.
    """

    num_classes = 200
    image_shape = (3, 64, 64)

    def __init__(
        self,
        root: str = "data",
        cache: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(root, **kwargs)
        self.cache = cache

    @property
    def folder(self) -> Path:
        """`<root>/tiny-imagenet-200`."""
        return Path(self.root) / _FOLDER

    def _require(self, *paths: Path) -> None:
        missing = [path for path in paths if not path.exists()]
        if missing:
            raise missing_files_error(
                type(self).__name__,
                missing,
                f"Download {_URL} and extract it into {self.root} so that "
                f"{self.folder / 'wnids.txt'}, {self.folder / 'train'} and "
                f"{self.folder / 'val'} exist.",
            )

    @property
    def class_names(self) -> list[str]:
        """The sorted wnids: class index i is `class_names[i]`."""
        self._require(self.folder / "wnids.txt")
        wnids = sorted(set((self.folder / "wnids.txt").read_text().split()))
        if len(wnids) != self.num_classes:
            raise ValueError(
                f"{self.folder / 'wnids.txt'} lists {len(wnids)} distinct wnids, expected "
                f"{self.num_classes}."
            )
        return wnids

    def files(self, split: str) -> list[tuple[str, int]]:
        """(path relative to the tiny-imagenet-200 folder, class index), sorted by path."""
        index = {wnid: label for label, wnid in enumerate(self.class_names)}
        if split == "train":
            self._require(self.folder / "train")
            files = []
            for wnid, label in index.items():  # a class without a folder simply has no images
                images = self.folder / "train" / wnid / "images"
                if images.is_dir():
                    names = sorted(
                        name
                        for name in os.listdir(images)
                        if Path(name).suffix.lower() in IMAGE_EXTENSIONS
                    )
                    files += [(f"train/{wnid}/images/{name}", label) for name in names]
            return files
        annotations = self.folder / "val" / "val_annotations.txt"
        self._require(annotations, self.folder / "val" / "images")
        files = []
        for number, line in enumerate(annotations.read_text().splitlines(), 1):
            fields = line.split("\t")
            if not line.strip():
                continue
            if len(fields) < 2 or fields[1] not in index:
                raise ValueError(f"{annotations}, line {number}: unknown wnid in {line!r}.")
            files.append((f"val/images/{fields[0]}", index[fields[1]]))
        return sorted(files)

    @override
    def load_split(self, split: str) -> Arrays:
        files = self.files(split)
        if split == "train" and not files:
            self._require(self.folder / "train" / "<wnid>" / "images" / "<name>.JPEG")
        names = [name for name, _ in files]
        labels = torch.tensor([label for _, label in files], dtype=torch.int64)
        key = hashlib.sha256("\n".join(f"{n}\t{y}" for n, y in files).encode()).hexdigest()
        cache_path = self.folder / f"{'val' if split == 'test' else split}_uint8.npz"
        if self.cache and cache_path.is_file():
            with np.load(cache_path) as cached:
                if str(cached["key"]) == key:
                    return torch.from_numpy(cached["images"]), labels
        if split == "test":  # val_annotations.txt may name files that are not there
            self._require(*(self.folder / name for name in names))
        images = decode_images(
            names,
            file_reader(self.folder),
            self.image_shape,
            str(self.folder),
        )
        if self.cache:
            self._write_cache(cache_path, images.numpy(), key)
        return images, labels

    def _write_cache(self, path: Path, images: np.ndarray, key: str) -> None:
        """Writes the decoded pixels atomically (`atomic_file`); a failure only warns."""
        try:
            with atomic_file(path) as file:
                np.savez(file, images=images, key=np.array(key))
        except OSError as error:
            warnings.warn(f"Could not write the Tiny ImageNet cache {path}: {error}", stacklevel=2)

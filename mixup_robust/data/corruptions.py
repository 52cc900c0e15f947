"""Common-corruption test sets (Hendrycks & Dietterich 2019): CIFAR-10/100-C, Tiny-ImageNet-C.

Two layouts are read:
- npy (CIFAR-10-C, CIFAR-100-C): `<root>/<corruption>.npy`, uint8 (5 * N, H, W, 3) with
  severities 1..5 stacked in order, and `<root>/labels.npy`, (5 * N,) labels.
- folders (Tiny-ImageNet-C): `<root>/<corruption>/<severity>/<wnid>/*.JPEG`; class index i is
  the i-th sorted wnid (as TinyImageNetDataModule orders classes).
"""

from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from typing_extensions import override

from mixup_robust.data.image_folder import decode_images, file_reader
from mixup_robust.data.indexed_images import ExactDistributedSampler, already_batched

SEVERITIES = (1, 2, 3, 4, 5)
# The 15 corruptions of the benchmark, then the 4 extra ones shipped with CIFAR-10-C.
BENCHMARK_CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
    "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast",
    "elastic_transform", "pixelate", "jpeg_compression",
)  # fmt: skip
EXTRA_CORRUPTIONS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
_IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


def _ordered(names: set[str]) -> list[str]:
    known = [name for name in BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS if name in names]
    return known + sorted(names - set(known))


def list_corruptions(root: str | Path) -> list[str]:
    """The corruptions under `root` (benchmark order first, then others sorted)."""
    root = Path(root)
    if (root / "labels.npy").is_file():
        return _ordered({p.stem for p in root.glob("*.npy") if p.stem != "labels"})
    folders = {p.parent.name for p in root.glob("*/1") if p.is_dir()}
    if not root.is_dir() or not folders:
        raise FileNotFoundError(
            f"No corruption data under {root}: expected <corruption>.npy files with labels.npy "
            "(CIFAR-10-C / CIFAR-100-C, from https://zenodo.org/record/2535967 and 3555552) "
            "or <corruption>/<severity>/<wnid>/*.JPEG folders (Tiny-ImageNet-C)."
        )
    return _ordered(folders)


def _check_severity(severity: int) -> None:
    if severity not in SEVERITIES:
        raise ValueError(f"severity={severity}; corruption severities are 1 to 5.")


def npy_stream(root: Path, corruption: str, severity: int) -> tuple[np.ndarray, np.ndarray]:
    """Memory-mapped uint8 (N, H, W, C) images and int64 labels of one severity (npy layout)."""
    _check_severity(severity)
    images_file, labels_file = root / f"{corruption}.npy", root / "labels.npy"
    missing = [str(p) for p in (images_file, labels_file) if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Missing {', '.join(missing)}: the npy layout (CIFAR-10-C) needs <root>/"
            f"<corruption>.npy, uint8 (5 x N, H, W, 3), and <root>/labels.npy, (5 x N,)."
        )
    images = np.load(images_file, mmap_mode="r")
    labels = np.load(labels_file).astype(np.int64)
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) != len(labels):
        raise ValueError(
            f"{images_file}: expected uint8 (5 x N, H, W, C) matching labels.npy "
            f"({len(labels)} labels), got {images.dtype} {images.shape}."
        )
    if len(labels) % len(SEVERITIES):
        raise ValueError(f"{labels_file}: {len(labels)} labels are not 5 equal severities.")
    n = len(labels) // len(SEVERITIES)
    part = slice((severity - 1) * n, severity * n)
    return images[part], labels[part]


def folder_stream(
    root: Path, corruption: str, severity: int, class_names: list[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """Image paths (relative to `root`) and int64 labels of one severity (folder layout)."""
    _check_severity(severity)
    folder = root / corruption / str(severity)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Missing {folder}: the folder layout (Tiny-ImageNet-C) needs "
            "<root>/<corruption>/<severity>/<wnid>/*.JPEG."
        )
    wnids = sorted(p.name for p in folder.iterdir() if p.is_dir())
    index = {wnid: label for label, wnid in enumerate(class_names or wnids)}
    files, labels = [], []
    for wnid in wnids:
        if wnid not in index:
            raise ValueError(f"{folder / wnid}: class {wnid} is not among the known classes.")
        for path in sorted((folder / wnid).iterdir()):
            if path.suffix.lower() in _IMAGE_SUFFIXES:
                files.append(str(path.relative_to(root)))
                labels.append(index[wnid])
    return files, np.asarray(labels, dtype=np.int64)


class CorruptionStream(Dataset):
    """One corruption at one severity, read a batch at a time (memory-mapped or decoded).

    Batches are `(uint8 images (B, C, H, W), int64 labels, indices)` like `IndexedImages`.
    """

    def __init__(
        self,
        root: str | Path,
        corruption: str,
        severity: int,
        image_shape: tuple[int, int, int],
        class_names: list[str] | None = None,
    ) -> None:
        self.root, self.image_shape = Path(root), tuple(image_shape)
        self.source = f"{self.root} ({corruption}, severity {severity})"
        if (self.root / "labels.npy").is_file() or (self.root / f"{corruption}.npy").is_file():
            self.images, labels = npy_stream(self.root, corruption, severity)
            self.files = None
            if tuple(self.images.shape[3:] + self.images.shape[1:3]) != self.image_shape:
                raise ValueError(
                    f"{self.source}: images are {self.images.shape[1:]} (H, W, C), expected "
                    f"(C, H, W) = {self.image_shape}."
                )
        else:
            self.files, labels = folder_stream(self.root, corruption, severity, class_names)
        self.labels = torch.from_numpy(np.ascontiguousarray(labels))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.__getitems__([item])

    def __getitems__(self, items: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(items, dtype=torch.long)
        if self.files is None:
            pixels = np.ascontiguousarray(self.images[index.numpy()].transpose(0, 3, 1, 2))
            images = torch.from_numpy(pixels)
        else:
            names = [self.files[i] for i in items]
            images = decode_images(names, file_reader(self.root), self.image_shape, self.source)
        return images, self.labels[index], index


def load_corruption(
    root: str | Path,
    corruption: str,
    severity: int,
    image_shape: tuple[int, int, int] = (3, 32, 32),
    class_names: list[str] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, C, H, W) images and int64 (N,) labels of one corruption at one severity."""
    stream = CorruptionStream(root, corruption, severity, image_shape, class_names)
    images, labels, _ = stream.__getitems__(list(range(len(stream))))
    return images, labels


class CorruptionDataModule(L.LightningDataModule):
    """Test-only data: one test DataLoader per (corruption, severity) stream, in that order.

    Batches are `(images in [0, 1], labels, indices)`; each stream is split over ranks with
    `ExactDistributedSampler`, so under DDP every image is seen exactly once.

    Args:
        root: folder of the corrupted test set (npy or folder layout, see the module doc).
        num_classes: classes of the data (10 for CIFAR-10-C, 100 for CIFAR-100-C, 200 for
            Tiny-ImageNet-C); linked into the model and checked against the labels.
        image_shape: (C, H, W) of the images ((3, 64, 64) for Tiny-ImageNet-C).
        corruptions: corruptions to evaluate; default: every one found under `root`.
        severities: severities to evaluate (1 to 5).
        eval_batch_size: batch size per device.
        num_workers: DataLoader workers (decoding JPEGs benefits from a few).
    """

    def __init__(
        self,
        root: str = "data/CIFAR-10-C",
        num_classes: int = 10,
        image_shape: tuple[int, int, int] = (3, 32, 32),
        corruptions: list[str] | None = None,
        severities: list[int] | None = None,
        eval_batch_size: int = 250,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        self.root = root
        self.num_classes = num_classes
        self.image_shape = tuple(image_shape)
        self.corruptions = corruptions
        self.severities = list(SEVERITIES if severities is None else severities)
        for severity in self.severities:
            _check_severity(severity)
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers

    @property
    def streams(self) -> list[tuple[str, int]]:
        """(corruption, severity) of each test DataLoader, in order."""
        corruptions = self.corruptions or list_corruptions(self.root)
        return [(name, severity) for name in corruptions for severity in self.severities]

    def dataset(self, corruption: str, severity: int) -> CorruptionStream:
        """The images of one corruption at one severity; raises if a label is out of range."""
        stream = CorruptionStream(self.root, corruption, severity, self.image_shape)
        labels = stream.labels
        if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"{stream.source}: labels must lie in [0, {self.num_classes}).")
        return stream

    @override
    def test_dataloader(self) -> list[DataLoader]:
        trainer = self.trainer
        world_size, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        loaders = []
        for corruption, severity in self.streams:
            dataset = self.dataset(corruption, severity)
            loaders.append(
                DataLoader(
                    dataset,
                    batch_size=self.eval_batch_size,
                    sampler=ExactDistributedSampler(dataset, world_size, rank),
                    collate_fn=already_batched,
                    num_workers=self.num_workers,
                )
            )
        return loaders

    @override
    def on_after_batch_transfer(self, batch: tuple, dataloader_idx: int) -> tuple:
        images, labels, indices = batch
        return images.float().div_(255.0), labels, indices

"""LightningDataModules that yield float images in [0, 1] and int64 labels."""

from mixup_robust.data.base import InMemoryDataModule
from mixup_robust.data.cifar import CIFAR10DataModule, CIFAR100DataModule
from mixup_robust.data.corruptions import CorruptionDataModule, list_corruptions, load_corruption
from mixup_robust.data.digits import DigitsDataModule
from mixup_robust.data.image_folder import ImageFolderDataModule
from mixup_robust.data.svhn import SVHNDataModule
from mixup_robust.data.tiny_imagenet import TinyImageNetDataModule

__all__ = [
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "CorruptionDataModule",
    "DigitsDataModule",
    "ImageFolderDataModule",
    "InMemoryDataModule",
    "SVHNDataModule",
    "TinyImageNetDataModule",
    "list_corruptions",
    "load_corruption",
]

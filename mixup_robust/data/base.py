"""The base DataModule: a small image data set held as uint8 tensors in memory."""

import abc
import math
from functools import cached_property
from typing import Literal

import lightning as L
import torch
from torch.utils.data import DataLoader, Sampler
from typing_extensions import override

from mixup_robust.data.augment import augment_uint8, random_crop, random_horizontal_flip
from mixup_robust.data.device_resident import device_loader
from mixup_robust.data.indexed_images import (
    ExactDistributedSampler,
    IndexedImages,
    already_batched,
    check_training_batches,
)
from mixup_robust.data.resume import ResumableSampler, resumed_position
from mixup_robust.seeding import DataStream, data_generator, resolve_seed

Arrays = tuple[torch.Tensor, torch.Tensor]


class InMemoryDataModule(L.LightningDataModule, abc.ABC):
    """Loads a data set once into uint8 tensors and yields float images in [0, 1].

    Subclasses implement `load_split` (and set `num_classes`, `image_shape`, `flip_allowed`).
    Batches are `(images, labels, indices)`; augmentation (random crop with zero padding,
    horizontal flip where the data set allows it) runs on whole batches after the transfer to
    the device. All random choices (validation split, test subset, pool, shuffling,
    augmentation) are seeded by `seed`.

    Args:
        root: folder that holds the data set files.
        batch_size: training batch size per device.
        eval_batch_size: batch size for validation and test; defaults to `batch_size`.
        val_size: images held out of the training split for validation: a count (>= 1) or a
            fraction (< 1). 0 disables validation.
        test_subset_size: evaluate on this many seeded random test points (the MI paper uses
            1,000); None uses the whole test split.
        pool_size_per_class: clean images per class in the Mixup Inference pool.
        crop_padding: zero padding (pixels) of the random-crop augmentation; 0 disables it.
        horizontal_flip: random horizontal flips; None uses the data set's default.
        seed: seed of every random choice above; None follows the run's seed
            (`seed_everything`).
        num_workers: DataLoader workers (the data is in memory, so 0 is usually best).
        pool_split: where the pool's images come from: 'train' (the training split, never
            validation or test; the default) or 'test' (the whole test split with the
            training augmentation applied once, as the MI paper's official code does: for
            exact reproduction only, since a test point can then be mixed with itself or
            with its neighbours in the test set).
        device_resident: keep the training split on the Trainer's device (a GPU) and cut each
            batch there: no per-batch host gather, host-to-device copy or worker process.
            For data sets that fit in device memory (refused when the uint8 images take more
            than half of the free memory); the batches are the same as without it. On CPU the
            data already lives on the device, so it changes nothing.
    """

    num_classes: int
    image_shape: tuple[int, int, int]
    flip_allowed: bool = True

    def __init__(
        self,
        root: str = "data",
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        val_size: float = 0.0,
        test_subset_size: int | None = None,
        pool_size_per_class: int = 100,
        crop_padding: int = 4,
        horizontal_flip: bool | None = None,
        seed: int | None = None,
        num_workers: int = 0,
        pool_split: Literal["train", "test"] = "train",
        device_resident: bool = False,
    ) -> None:
        super().__init__()
        if device_resident and num_workers:
            raise ValueError(
                "device_resident: true cuts batches on the device in the main process; set "
                "num_workers: 0."
            )
        if batch_size < 1 or (eval_batch_size is not None and eval_batch_size < 1):
            raise ValueError("batch_size and eval_batch_size must be at least 1.")
        if val_size < 0 or pool_size_per_class < 1 or crop_padding < 0:
            raise ValueError("val_size and crop_padding must be >= 0, pool_size_per_class >= 1.")
        if horizontal_flip and not self.flip_allowed:
            raise ValueError(
                f"{type(self).__name__} does not allow horizontal flips (mirrored digits or "
                "text change meaning); set horizontal_flip to false or leave it unset."
            )
        self.root = root
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.val_size = val_size
        self.test_subset_size = test_subset_size
        if pool_split not in ("train", "test"):
            raise ValueError(f"pool_split={pool_split!r}; choose 'train' or 'test'.")
        self.pool_size_per_class = pool_size_per_class
        self.pool_split = pool_split
        self.crop_padding = crop_padding
        self.horizontal_flip = self.flip_allowed if horizontal_flip is None else horizontal_flip
        self.seed = resolve_seed(seed)
        self.num_workers = num_workers
        self.device_resident = device_resident
        self.train_batches_seen = 0

    # ----------------------------------------------------------------- subclass hooks
    @abc.abstractmethod
    def load_split(self, split: str) -> Arrays:
        """Returns uint8 images (N, C, H, W) and int64 labels (N,) of 'train' or 'test'.

        Raises FileNotFoundError saying where the files must be when they are missing.
        """

    # ----------------------------------------------------------------- loading
    @cached_property
    def arrays(self) -> dict[str, Arrays]:
        """The decoded 'train' and 'test' splits, loaded once and checked."""
        loaded = {split: self.load_split(split) for split in ("train", "test")}
        for split, (images, labels) in loaded.items():
            self._check_arrays(split, images, labels)
        return loaded

    def _check_arrays(self, split: str, images: torch.Tensor, labels: torch.Tensor) -> None:
        name = type(self).__name__
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"{name}: {split} images must be uint8 (N, C, H, W).")
        if tuple(images.shape[1:]) != tuple(self.image_shape):
            raise ValueError(
                f"{name}: {split} images have shape {tuple(images.shape[1:])}, expected "
                f"{tuple(self.image_shape)}."
            )
        if len(labels) != len(images) or labels.dtype != torch.int64:
            raise ValueError(f"{name}: {split} needs one int64 label per image.")
        if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"{name}: {split} labels must lie in [0, {self.num_classes}).")

    @cached_property
    def split_indices(self) -> dict[str, torch.Tensor]:
        """Indices into the loaded arrays of the train, val and test sets (seeded)."""
        n_train = len(self.arrays["train"][1])
        n_val = int(self.val_size) if self.val_size >= 1 else round(self.val_size * n_train)
        if n_val >= n_train:
            raise ValueError(f"val_size={self.val_size} leaves no training images of {n_train}.")
        order = torch.randperm(n_train, generator=data_generator(self.seed, DataStream.SPLIT))
        n_test = len(self.arrays["test"][1])
        test = torch.arange(n_test)
        if self.test_subset_size is not None:
            if not 0 < self.test_subset_size <= n_test:
                raise ValueError(
                    f"test_subset_size={self.test_subset_size} must lie in [1, {n_test}]."
                )
            draws = data_generator(self.seed, DataStream.TEST_SUBSET)
            subset = torch.randperm(n_test, generator=draws)
            test = subset[: self.test_subset_size].sort().values
        return {
            "train": order[n_val:].sort().values,
            "val": order[:n_val].sort().values,
            "test": test,
        }

    # ----------------------------------------------------------------- statistics
    @cached_property
    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of the training images, in [0, 1] pixel units."""
        images, index = self.arrays["train"][0], self.split_indices["train"]
        total = torch.zeros(images.shape[1], dtype=torch.float64)
        squares = torch.zeros_like(total)
        for chunk in index.split(4096):  # bounded memory for large sets (Tiny-ImageNet)
            values = images[chunk].to(torch.float64) / 255.0
            total += values.sum(dim=(0, 2, 3))
            squares += values.square().sum(dim=(0, 2, 3))
        count = len(index) * images.shape[2] * images.shape[3]
        mean = total / count
        std = (squares / count - mean.square()).clamp_min(1e-12).sqrt()
        return tuple(mean.tolist()), tuple(std.tolist())

    @property
    def mean(self) -> tuple[float, ...]:
        """Per-channel mean of the training images in [0, 1] pixel units (`channel_stats`)."""
        return self.channel_stats[0]

    @property
    def std(self) -> tuple[float, ...]:
        """Per-channel std of the training images in [0, 1] pixel units (`channel_stats`)."""
        return self.channel_stats[1]

    # ----------------------------------------------------------------- pool
    def sampling_pool(self) -> Arrays:
        """Clean images for Mixup Inference, bucketed by class.

        Returns uint8 images and int64 labels sorted by class, at most `pool_size_per_class`
        per class, drawn (seeded) from the training split (never from validation or test),
        or with `pool_split: test` from the whole test split, augmented once.
        """
        split = self.pool_split
        images, labels = self.arrays[split]
        candidates = self.split_indices["train"] if split == "train" else torch.arange(len(labels))
        draws = data_generator(self.seed, DataStream.POOL)
        candidates = candidates[torch.randperm(len(candidates), generator=draws)]
        chosen = []
        for label in range(self.num_classes):
            members = candidates[labels[candidates] == label][: self.pool_size_per_class]
            if len(members) == 0:
                raise ValueError(f"The {split} split has no image of class {label} for the pool.")
            chosen.append(members)
        index = torch.cat(chosen)
        if split == "train":
            return images[index], labels[index]
        generator = data_generator(self.seed, DataStream.POOL_AUGMENT)
        pool = augment_uint8(images[index], self.crop_padding, self.horizontal_flip, generator)
        return pool, labels[index]

    # ----------------------------------------------------------------- loaders
    @override
    def setup(self, stage: str | None = None) -> None:
        self.split_indices  # noqa: B018 - loads and splits once, with clear errors, up front
        if stage == "fit":
            train = len(self.split_indices["train"])
            check_training_batches(train, self._world()[0], self.batch_size, type(self).__name__)

    def _dataset(self, split: str) -> IndexedImages:
        images, labels = self.arrays["test" if split == "test" else "train"]
        return IndexedImages(images, labels, self.split_indices[split])

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)

    @override
    def train_dataloader(self) -> DataLoader:
        dataset = self._dataset("train")
        world_size, rank = self._world()
        if self.device_resident:
            device = self.trainer.strategy.root_device if self.trainer is not None else None
            device = device or torch.device("cpu")
            return device_loader(dataset, world_size, rank, self.seed, self.batch_size, device)
        # A seeded DistributedSampler (also for one process): Lightning calls set_epoch on it,
        # so each epoch's order depends only on (seed, epoch) and resuming reproduces it; a
        # run resumed mid-epoch skips the batches it already trained.
        per_epoch = math.ceil(len(dataset) / world_size) // self.batch_size
        epoch, done = resumed_position(self.trainer, per_epoch)
        sampler = ResumableSampler(
            dataset, world_size, rank, self.seed, skip_epoch=epoch, skip=done * self.batch_size
        )
        # drop_last: a last batch of one image would break batch norm.
        return self._loader(dataset, sampler, self.batch_size, drop_last=True)

    def _eval_loader(self, split: str) -> DataLoader:
        dataset = self._dataset(split)
        world_size, rank = self._world()
        sampler = ExactDistributedSampler(dataset, num_replicas=world_size, rank=rank)
        return self._loader(dataset, sampler, self.eval_batch_size)

    def _loader(
        self,
        dataset: IndexedImages,
        sampler: Sampler[int],
        batch_size: int,
        drop_last: bool = False,
    ) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            drop_last=drop_last,
            collate_fn=already_batched,
            num_workers=self.num_workers,
        )

    @override
    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader("val") if len(self.split_indices["val"]) else []

    @override
    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    @override
    def predict_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    # ----------------------------------------------------------------- device-side transform
    @override
    def on_after_batch_transfer(self, batch: tuple, dataloader_idx: int) -> tuple:
        images, labels, indices = batch
        images = images.float().div_(255.0)
        if self.trainer is not None and self.trainer.training:
            images = self.augment(images)
        return images, labels, indices

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """Random crop and flip, seeded by (seed, rank, number of training batches so far)."""
        _, rank = self._world()
        generator = torch.Generator(device=images.device)
        generator.manual_seed(hash((self.seed, rank, self.train_batches_seen)) & (2**62 - 1))
        self.train_batches_seen += 1
        images = random_crop(images, self.crop_padding, generator)
        if self.horizontal_flip:
            images = random_horizontal_flip(images, generator)
        return images

    @override
    def state_dict(self) -> dict:
        return {"train_batches_seen": self.train_batches_seen}

    @override
    def load_state_dict(self, state_dict: dict) -> None:
        self.train_batches_seen = state_dict["train_batches_seen"]

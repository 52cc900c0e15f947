"""Training data held on the device (`device_resident`): whole batches cut there."""

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler


def check_fits_on_device(images: torch.Tensor, device: torch.device) -> None:
    """Raises when the images would take more than half of the device's free memory."""
    if device.type != "cuda":
        return
    free, _ = torch.cuda.mem_get_info(device)
    needed = images.numel() * images.element_size()
    if needed > free / 2:
        raise ValueError(
            f"device_resident: the training images take {needed / 2**30:.1f} GiB, more than "
            f"half of the {free / 2**30:.1f} GiB free on {device}; set device_resident: false."
        )


class DeviceBatchSampler(DistributedSampler):
    """The training order of a seeded DistributedSampler, as index batches on a device.

    Yields one int64 tensor of `batch_size` positions per batch, cut from the epoch's order
    after it was moved to `device` once: no per-batch host work or copy. The order and the
    batches are exactly those of the host path (the same sampler, `drop_last` batching), and
    subclassing DistributedSampler keeps Lightning's `set_epoch` calls (and keeps it from
    replacing the sampler under DDP).
    """

    def __init__(
        self,
        dataset: Dataset,
        num_replicas: int,
        rank: int,
        seed: int,
        batch_size: int,
        device: torch.device,
    ) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.batch_size = batch_size
        self.device = device

    def __iter__(self) -> Iterator[torch.Tensor]:
        # A generator: the epoch's order is read at the first batch, after Lightning's
        # set_epoch, also when a resumed run creates the iterator before setting the epoch.
        order = torch.tensor(list(super().__iter__()), dtype=torch.long).to(self.device)
        yield from order[: len(self) * self.batch_size].split(self.batch_size)

    def __len__(self) -> int:
        return self.num_samples // self.batch_size


def device_loader(
    dataset: Dataset, world_size: int, rank: int, seed: int, batch_size: int, device: torch.device
) -> DataLoader:
    """The training loader of `device_resident`: `dataset` copied to `device`, batches cut there.

    `dataset` is an `IndexedImages` (images, labels, indices); a copy of it on `device` is
    indexed with a whole batch of positions at a time.
    """
    check_fits_on_device(dataset.images, device)
    resident = type(dataset)(
        dataset.images.to(device), dataset.labels.to(device), dataset.indices.to(device)
    )
    sampler = DeviceBatchSampler(resident, world_size, rank, seed, batch_size, device)
    # batch_size=None: each sampler item is already a batch; the dataset returns it whole.
    return DataLoader(resident, batch_size=None, sampler=sampler, collate_fn=_unchanged)


def _unchanged(batch: tuple) -> tuple:
    return batch

"""What an in-memory DataModule serves: whole batches of indexed images, split exactly by rank."""

from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, DistributedSampler


class IndexedImages(Dataset):
    """uint8 images and int64 labels, fetched a whole batch at a time.

    Each batch is `(images, labels, indices)`, where `indices` are the samples' positions in
    their split: defenses key their per-sample randomness on them.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor) -> None:
        self.images, self.labels, self.indices = images, labels, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int | torch.Tensor) -> tuple[torch.Tensor, ...]:
        if isinstance(item, torch.Tensor):  # a batch of positions (device_resident)
            return self.batch(item)
        return self.__getitems__([item])

    def __getitems__(self, items: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.batch(torch.as_tensor(items, dtype=torch.long))

    def batch(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The samples at `positions` (int64, on the images' device) as one batch."""
        index = self.indices[positions]
        return self.images[index], self.labels[index], index


def already_batched(batch: tuple) -> tuple:
    """The DataLoader's collate: a dataset that fetches whole batches returns them as they are."""
    return batch


class ExactDistributedSampler(DistributedSampler):
    """Splits the data over ranks without padding: every sample is seen exactly once.

    torch's DistributedSampler repeats samples so that all ranks get the same count; test
    metrics would then count them twice. Subclassing it keeps Lightning from replacing it.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, len(self.dataset), self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, len(self.dataset), self.num_replicas))


def check_training_batches(images: int, world_size: int, batch_size: int, name: str) -> None:
    """Raises when no full training batch fits: Lightning would skip training and exit 0.

    Each rank gets ceil(images / world_size) images and the last incomplete batch is dropped.
    """
    per_rank = -(-images // world_size)
    if per_rank < batch_size:
        ranks = f" per device ({world_size} devices)" if world_size > 1 else ""
        raise ValueError(
            f"{name}: the training split has {per_rank} images{ranks}, fewer than "
            f"batch_size={batch_size}, so there would be no training batch (an incomplete "
            "last batch is dropped) and the run would end without training or a checkpoint. "
            "Lower data.init_args.batch_size or val_size, or use more data."
        )

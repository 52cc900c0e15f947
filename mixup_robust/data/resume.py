"""Resuming a training epoch in the middle: skip the batches the checkpoint already trained."""

from collections.abc import Iterator

import lightning as L
from torch.utils.data import Dataset, DistributedSampler


class ResumableSampler(DistributedSampler):
    """A seeded DistributedSampler whose resumed epoch starts after the batches already done.

    Its length stays the full epoch's (Lightning counts the resumed batches from where the
    checkpoint left off); only the first iteration of the resumed epoch drops its first
    `skip` samples, so that a run resumed mid-epoch (SLURM pre-emption) trains exactly the
    batches the uninterrupted run would have.
    """

    def __init__(
        self, dataset: Dataset, num_replicas: int, rank: int, seed: int,
        skip_epoch: int = -1, skip: int = 0,
    ) -> None:  # fmt: skip
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.skip_epoch, self.skip = skip_epoch, skip

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        if self.epoch == self.skip_epoch:
            indices, self.skip_epoch = indices[self.skip :], -1  # once, then whole epochs
        return iter(indices)


def resumed_position(trainer: L.Trainer | None, batches_per_epoch: int) -> tuple[int, int]:
    """(epoch, training batches already done in it) when fit resumes mid-epoch, else (-1, 0).

    Read from the fit loop's progress counters, which Lightning restores from the checkpoint
    before it asks for the training dataloader.
    """
    if trainer is None or trainer.state.fn != "fit":
        return -1, 0
    epochs = trainer.fit_loop.epoch_progress.current
    if epochs.started == epochs.processed:
        return -1, 0  # the checkpoint's epoch was finished (or stopped early by max_steps)
    done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
    if not 0 < done < batches_per_epoch:
        return -1, 0
    return trainer.current_epoch, done

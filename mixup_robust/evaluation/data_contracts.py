"""What a measurement needs of its DataModule, declared as Protocols and checked by isinstance.

evaluation never imports `mixup_robust.data`: a DataModule fulfils a contract by having the
members below (`InMemoryDataModule` has `sampling_pool`, `CorruptionDataModule` `streams`).
"""

from typing import Protocol, TypeVar, runtime_checkable

import lightning as L
import torch

Data = TypeVar("Data")


@runtime_checkable
class SamplingPoolData(Protocol):
    """A DataModule that gives the clean images defenses mix with (Mixup Inference's pool)."""

    def sampling_pool(self) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images (M, C, H, W) and their int64 labels (M,), sorted by class."""
        ...


@runtime_checkable
class CorruptionStreamsData(Protocol):
    """A DataModule with one test DataLoader per (corruption, severity) stream."""

    @property
    def streams(self) -> list[tuple[str, int]]:
        """(corruption, severity) of each test DataLoader, in order."""
        ...


def required_datamodule(module: L.LightningModule, contract: type[Data], error: str) -> Data:
    """The DataModule of `module`'s trainer if it fulfils `contract`, else a ValueError.

    Args:
        module: the measurement, attached to a trainer (or not yet: that is an error too).
        contract: one of the Protocols above.
        error: the message of the error, saying which DataModule to use.
    """
    datamodule = module.trainer.datamodule if module._trainer is not None else None
    if not isinstance(datamodule, contract):
        raise ValueError(error)
    return datamodule

"""Checks shared by the tests of the file-format DataModules."""

import numpy as np
import torch

from mixup_robust.data import InMemoryDataModule


def rng(seed: int = 0) -> np.random.Generator:
    """A seeded NumPy generator for fake images and labels."""
    return np.random.default_rng(seed)


def check_batches(dm: InMemoryDataModule, images: torch.Tensor, labels: torch.Tensor) -> None:
    """The test loader yields every test image, as floats in [0, 1], with its label."""
    dm.setup("test")
    seen = 0
    for batch in dm.test_dataloader():
        x, y, index = dm.on_after_batch_transfer(batch, 0)
        assert x.dtype == torch.float32 and 0.0 <= x.min() and x.max() <= 1.0
        torch.testing.assert_close(x, images[index].float() / 255.0)
        assert torch.equal(y, labels[index])
        seen += len(y)
    assert seen == len(labels)

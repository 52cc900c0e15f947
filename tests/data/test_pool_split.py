"""The MI pool from the test split (the official MI code), beside the default training pool."""

import pytest
import torch
import torch.nn.functional as F

from mixup_robust.data import DigitsDataModule


def _keys(images: torch.Tensor) -> set[bytes]:
    return {bytes(x.flatten().tolist()) for x in images}


def test_test_split_pool_holds_test_images_augmented_once():
    plain = DigitsDataModule(pool_size_per_class=15, crop_padding=0, pool_split="test", seed=2)
    images, labels = plain.sampling_pool()
    test_x, _ = plain.arrays["test"]
    assert labels.bincount().tolist() == [15] * 10
    assert _keys(images) <= _keys(test_x)  # without augmentation: test images as they are
    assert not _keys(images) & (_keys(plain.arrays["train"][0]) - _keys(test_x))
    augmented = DigitsDataModule(pool_size_per_class=15, crop_padding=1, pool_split="test", seed=2)
    shifted, shifted_labels = augmented.sampling_pool()
    assert torch.equal(shifted_labels, labels) and shifted.dtype == torch.uint8
    assert not _keys(shifted) <= _keys(test_x)  # the training augmentation moved pixels
    # Each pool image is one of the 9 one-pixel shifts (zeros shifted in) of its test image.
    padded = F.pad(images, (1, 1, 1, 1))
    shifts = set()
    for top in range(3):
        for left in range(3):
            shifts |= _keys(padded[:, :, top : top + 8, left : left + 8])
    assert _keys(shifted) <= shifts


def test_default_pool_stays_the_training_split():
    module = DigitsDataModule(pool_size_per_class=15, seed=2)
    images, _ = module.sampling_pool()
    train = module.arrays["train"][0][module.split_indices["train"]]
    assert _keys(images) <= _keys(train)
    with pytest.raises(ValueError, match="pool_split"):
        DigitsDataModule(pool_split="validation")

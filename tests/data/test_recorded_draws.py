"""The digits' splits and pools as drawn before the data module used `seeding.data_generator`.

The digests were recorded with the former code (`torch.Generator().manual_seed(seed * 1000 +
purpose)` in data/base.py, commit d8389c2): the same seed must keep drawing the same
validation split, test subset and sampling pools.
"""

import hashlib

import pytest
import torch

from mixup_robust.data import DigitsDataModule

# seed -> (split digest, sum of val indices, sum of test indices, train pool, test pool)
RECORDED = {
    0: ("ec09dc5c20ca52d3", 111358, 16504, "86747afdda3be128", "9f51a158ebe434b8"),
    1: ("9ba4702ea8e8b3d2", 97484, 17457, "d50af276d298fb0e", "ecb56d2e24a28ecf"),
}


def _digest(*tensors: torch.Tensor) -> str:
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@pytest.mark.parametrize("seed", sorted(RECORDED))
def test_split_indices_are_the_recorded_ones(seed):
    digits = DigitsDataModule(seed=seed, val_size=0.1, test_subset_size=100)
    split = digits.split_indices
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (1294, 144, 100)
    digest, val_sum, test_sum = RECORDED[seed][:3]
    assert int(split["val"].sum()) == val_sum
    assert int(split["test"].sum()) == test_sum
    assert _digest(split["train"], split["val"], split["test"]) == digest


@pytest.mark.parametrize("seed", sorted(RECORDED))
@pytest.mark.parametrize("pool_split", ["train", "test"])
def test_sampling_pools_are_the_recorded_ones(seed, pool_split):
    digits = DigitsDataModule(
        seed=seed, val_size=0.1, pool_size_per_class=20, pool_split=pool_split
    )
    images, labels = digits.sampling_pool()
    assert images.shape == (200, 1, 8, 8)
    assert torch.equal(labels, torch.arange(10).repeat_interleave(20))
    expected = RECORDED[seed][3 if pool_split == "train" else 4]
    assert _digest(images, labels) == expected

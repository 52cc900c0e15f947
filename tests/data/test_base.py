"""The base DataModule's behaviour, through the embedded digits."""

import pytest
import torch

from mixup_robust.data import DigitsDataModule
from mixup_robust.data.base import ExactDistributedSampler


@pytest.fixture(scope="module")
def digits() -> DigitsDataModule:
    module = DigitsDataModule(val_size=0.1, test_subset_size=100, pool_size_per_class=20, seed=3)
    module.setup("fit")
    return module


def test_arrays_are_uint8_and_cover_all_digits(digits):
    (train_x, train_y), (_, test_y) = digits.arrays["train"], digits.arrays["test"]
    assert train_x.dtype == torch.uint8 and train_x.shape[1:] == (1, 8, 8)
    assert len(train_y) + len(test_y) == 1797
    assert int(train_x.max()) == 255 and int(train_x.min()) == 0
    # The fixed split is stratified: every class has about 20% of its images in test.
    ratio = test_y.bincount(minlength=10).float() / (train_y.bincount() + test_y.bincount())
    assert torch.allclose(ratio, torch.full((10,), 0.2), atol=0.01)


def test_splits_are_disjoint_seeded_and_complete(digits):
    split = digits.split_indices
    train, val = set(split["train"].tolist()), set(split["val"].tolist())
    assert not train & val and len(train | val) == len(digits.arrays["train"][1])
    assert len(val) == round(0.1 * len(digits.arrays["train"][1]))
    again = DigitsDataModule(val_size=0.1, test_subset_size=100, seed=3)
    other = DigitsDataModule(val_size=0.1, test_subset_size=100, seed=4)
    assert torch.equal(again.split_indices["test"], split["test"])
    assert not torch.equal(other.split_indices["test"], split["test"])
    assert len(split["test"]) == 100 and len(set(split["test"].tolist())) == 100


def test_test_subset_size_out_of_range_is_a_clear_error():
    with pytest.raises(ValueError, match="test_subset_size"):
        DigitsDataModule(test_subset_size=10_000).split_indices  # noqa: B018


def test_flip_is_refused_for_digits():
    with pytest.raises(ValueError, match="horizontal flips"):
        DigitsDataModule(horizontal_flip=True)


def test_loader_batches_are_pixels_of_the_indexed_samples(digits):
    images, labels, index = next(iter(digits.test_dataloader()))
    images, labels, index = digits.on_after_batch_transfer((images, labels, index), 0)
    assert images.dtype == torch.float32 and 0 <= images.min() and images.max() <= 1
    test_x, test_y = digits.arrays["test"]
    assert torch.equal(images, test_x[index].float() / 255)
    assert torch.equal(labels, test_y[index])
    assert set(index.tolist()) <= set(digits.split_indices["test"].tolist())


@pytest.mark.parametrize("world_size", [2, 3])
def test_exact_sampler_sees_every_sample_once(digits, world_size):
    dataset = digits._dataset("test")
    seen = [
        i for rank in range(world_size) for i in ExactDistributedSampler(dataset, world_size, rank)
    ]
    assert sorted(seen) == list(range(len(dataset)))


def test_training_order_depends_only_on_seed_and_epoch(digits):
    sampler = digits.train_dataloader().sampler
    sampler.set_epoch(0)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    sampler.set_epoch(0)
    assert list(sampler) == first and first != second


def test_pool_is_bucketed_by_class_and_drawn_from_training_images(digits):
    images, labels = digits.sampling_pool()
    assert labels.bincount().tolist() == [20] * 10
    assert torch.equal(labels, labels.sort().values)
    train_x, _ = digits.arrays["train"]
    allowed = {bytes(x.flatten().tolist()) for x in train_x[digits.split_indices["train"]]}
    assert all(bytes(x.flatten().tolist()) in allowed for x in images)


def test_channel_stats_match_the_training_images(digits):
    pixels = digits.arrays["train"][0][digits.split_indices["train"]].double() / 255
    assert digits.mean[0] == pytest.approx(pixels.mean().item(), abs=1e-9)
    assert digits.std[0] == pytest.approx(pixels.std(unbiased=False).item(), abs=1e-9)


def test_augmentation_is_seeded_and_resumable(digits):
    images = digits.arrays["train"][0][:64].float() / 255
    digits.load_state_dict({"train_batches_seen": 5})
    first = digits.augment(images)
    assert digits.state_dict() == {"train_batches_seen": 6}
    digits.load_state_dict({"train_batches_seen": 5})
    assert torch.equal(digits.augment(images), first)
    assert not torch.equal(first, images)  # a 1-pixel random crop moves most digits

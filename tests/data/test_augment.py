"""Tests for the batch augmentations in mixup_robust.data.augment."""

import pytest
import torch
import torch.nn.functional as F

from mixup_robust.data.augment import random_crop, random_horizontal_flip


def _images(batch: int, channels: int = 3, size: int = 6, seed: int = 0) -> torch.Tensor:
    """Random images with no zero pixels, so zero padding is visible in the crops."""
    generator = torch.Generator().manual_seed(seed)
    return 0.1 + 0.9 * torch.rand(batch, channels, size, size, generator=generator)


def _shifted(image: torch.Tensor, padding: int, dy: int, dx: int) -> torch.Tensor:
    """The zero-padded image cropped back at offset (dy, dx) in [-padding, padding]."""
    _, height, width = image.shape
    padded = F.pad(image, (padding, padding, padding, padding))
    top, left = padding + dy, padding + dx
    return padded[:, top : top + height, left : left + width]


def _offsets(images: torch.Tensor, crops: torch.Tensor, padding: int) -> list[tuple[int, int]]:
    """The offset of each crop, found by searching all of them; fails if none matches."""
    found = []
    span = range(-padding, padding + 1)
    for image, crop in zip(images, crops, strict=True):
        matches = [
            (dy, dx)
            for dy in span
            for dx in span
            if torch.equal(crop, _shifted(image, padding, dy, dx))
        ]
        assert len(matches) == 1, f"crop matches offsets {matches}"
        found.append(matches[0])
    return found


# ----------------------------------------------------------------------------------- random_crop


def test_random_crop_padding_zero_is_identity():
    images = _images(5)
    out = random_crop(images, 0, torch.Generator().manual_seed(0))
    assert torch.equal(out, images)


@pytest.mark.parametrize("padding", [1, 2, 4])
def test_random_crop_is_a_shift_of_the_padded_image(padding):
    images = _images(32, size=8, seed=padding)
    out = random_crop(images, padding, torch.Generator().manual_seed(1))
    assert out.shape == images.shape
    assert out.dtype == images.dtype
    offsets = _offsets(images, out, padding)
    assert all(abs(dy) <= padding and abs(dx) <= padding for dy, dx in offsets)


def test_random_crop_offsets_differ_across_samples_and_cover_the_range():
    padding = 2
    images = _images(200, channels=1, size=6, seed=3)
    out = random_crop(images, padding, torch.Generator().manual_seed(2))
    offsets = _offsets(images, out, padding)
    # 25 possible offsets, 200 samples: nearly all of them should appear.
    assert len(set(offsets)) >= 20
    assert {dy for dy, _ in offsets} == set(range(-padding, padding + 1))
    assert {dx for _, dx in offsets} == set(range(-padding, padding + 1))


def test_random_crop_keeps_channels_of_a_sample_together():
    """All channels of one image get the same offset."""
    images = _images(16, channels=3, size=6, seed=4)
    out = random_crop(images, 2, torch.Generator().manual_seed(5))
    for image, crop, offset in zip(images, out, _offsets(images, out, 2), strict=True):
        for channel in range(3):
            expected = _shifted(image[channel : channel + 1], 2, *offset)
            assert torch.equal(crop[channel : channel + 1], expected)


def test_random_crop_same_generator_seed_same_result():
    images = _images(20)
    a = random_crop(images, 3, torch.Generator().manual_seed(7))
    b = random_crop(images, 3, torch.Generator().manual_seed(7))
    c = random_crop(images, 3, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_random_crop_does_not_modify_input():
    images = _images(4)
    copy = images.clone()
    random_crop(images, 2, torch.Generator().manual_seed(0))
    assert torch.equal(images, copy)


# ------------------------------------------------------------------------ random_horizontal_flip


def test_random_horizontal_flip_each_image_unchanged_or_mirrored():
    images = _images(400, channels=2, size=5, seed=1)
    out = random_horizontal_flip(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    flipped = 0
    for image, result in zip(images, out, strict=True):
        same = torch.equal(result, image)
        mirrored = torch.equal(result, image.flip(-1))
        assert same != mirrored  # exactly one (random images are not symmetric)
        flipped += mirrored
    # Binomial(400, 1/2): standard deviation 10.
    assert 150 <= flipped <= 250


def test_random_horizontal_flip_mirrors_columns_exactly():
    image = torch.arange(12.0).view(1, 1, 3, 4)
    images = image.expand(64, -1, -1, -1).contiguous()
    out = random_horizontal_flip(images, torch.Generator().manual_seed(3))
    mirrored = torch.tensor([[3.0, 2, 1, 0], [7, 6, 5, 4], [11, 10, 9, 8]])
    kinds = {torch.equal(o[0], mirrored) for o in out} | {
        torch.equal(o[0], image[0, 0]) for o in out
    }
    assert kinds == {True, False}  # both variants occur in 64 draws
    for o in out:
        assert torch.equal(o[0], mirrored) or torch.equal(o[0], image[0, 0])


def test_random_horizontal_flip_same_generator_seed_same_result():
    images = _images(50)
    a = random_horizontal_flip(images, torch.Generator().manual_seed(11))
    b = random_horizontal_flip(images, torch.Generator().manual_seed(11))
    c = random_horizontal_flip(images, torch.Generator().manual_seed(12))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)

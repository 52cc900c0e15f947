"""Tests for MI-Combined and the randomized input-transformation baselines."""

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from torch import nn
from torchvision.transforms import InterpolationMode

from mixup_robust.defenses import ClassPool, MixupInference, RandomCropPad
from mixup_robust.defenses.input_transforms import (
    GaussianNoise,
    RandomCropResize,
    RandomResizePad,
    RandomRotation,
)
from mixup_robust.defenses.mixup_inference_combined import MixupInferenceCombined

NUM_CLASSES = 4
SHAPE = (1, 8, 8)


def _linear_net(seed: int = 0, shape: tuple[int, ...] = SHAPE) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), NUM_CLASSES)).eval()


@pytest.fixture
def pool() -> ClassPool:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(20) % NUM_CLASSES
    images = torch.randint(0, 256, (20, *SHAPE), generator=generator, dtype=torch.uint8)
    return ClassPool(images, labels, NUM_CLASSES)


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(6, *SHAPE, generator=torch.Generator().manual_seed(1))


def _transforms() -> list:
    return [
        GaussianNoise(0.1, n_executions=5),
        RandomRotation(40, n_executions=5),
        RandomResizePad(4, 10, n_executions=5),
        RandomCropResize(3, 7, n_executions=5),
        RandomCropPad(3, 7, n_executions=5),
    ]


def _keys(n: int, execution: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.arange(n), torch.full((n,), execution)


# --------------------------------------------------------------------------- what each computes


def test_rotation_matches_torchvision_with_angles_in_range():
    defense = RandomRotation(30).bind(_linear_net())
    x = torch.rand(200, 3, 10, 14, generator=torch.Generator().manual_seed(2))  # non-square
    sample, execution = _keys(200, execution=3)
    angles = defense.angles(sample, execution)
    assert angles.abs().max() <= 30 and angles.min() < -20 and angles.max() > 20
    out = defense.transform(x, sample, execution)
    for i in range(0, 200, 20):
        expected = TF.rotate(x[i], float(angles[i]), interpolation=InterpolationMode.BILINEAR)
        assert torch.allclose(out[i], expected, atol=1e-5)


def test_rotation_moves_a_bright_pixel_by_the_angle():
    defense = RandomRotation(40).bind(_linear_net())
    x = torch.zeros(50, 1, 41, 41)
    x[:, :, 20, 35] = 1.0  # 15 pixels right of the centre (20, 20)
    sample, execution = _keys(50)
    out = defense.transform(x, sample, execution)[:, 0]
    ys, xs = torch.meshgrid(torch.arange(41.0), torch.arange(41.0), indexing="ij")
    mass = out.sum(dim=(1, 2))
    cy, cx = (out * ys).sum((1, 2)) / mass, (out * xs).sum((1, 2)) / mass
    # Counter-clockwise on screen: up (smaller row) for positive angles.
    recovered = torch.rad2deg(torch.atan2(20 - cy, cx - 20))
    assert torch.allclose(recovered.double(), defense.angles(sample, execution), atol=1.0)


def test_crop_resize_params_in_range_and_output_is_the_resized_crop():
    defense = RandomCropResize(3, 7).bind(_linear_net())
    x = torch.rand(300, 2, 8, 9, generator=torch.Generator().manual_seed(3))
    sample, execution = _keys(300, execution=1)
    size, top, left = defense.params(sample, execution, 8, 9)
    assert set(size.tolist()) == {3, 4, 5, 6, 7}
    assert (top >= 0).all() and (top + size <= 8).all()
    assert (left >= 0).all() and (left + size <= 9).all()
    assert (top + size == 8).any() and (left == 0).any()  # extreme positions are reachable
    out = defense.transform(x, sample, execution)
    for i in range(0, 300, 7):
        s, t, lf = size[i].item(), top[i].item(), left[i].item()
        crop = x[i : i + 1, :, t : t + s, lf : lf + s]
        expected = F.interpolate(crop, size=(8, 9), mode="bilinear", align_corners=False)
        assert torch.allclose(out[i], expected[0], atol=1e-6)


def test_crop_larger_than_image_raises():
    defense = RandomCropResize(3, 9).bind(_linear_net())
    with pytest.raises(ValueError, match="exceeds"):
        defense.transform(torch.rand(2, *SHAPE), *_keys(2))


def test_resize_pad_params_in_range_and_output_is_padded_resize():
    defense = RandomResizePad(4, 10).bind(_linear_net())
    x = torch.rand(300, 2, 8, 8, generator=torch.Generator().manual_seed(4))
    sample, execution = _keys(300, execution=2)
    size, top, left = defense.params(sample, execution)
    assert set(size.tolist()) == set(range(4, 11))
    assert (top >= 0).all() and (top + size <= 10).all()
    assert (left >= 0).all() and (left + size <= 10).all()
    out = defense.transform(x, sample, execution)
    assert out.shape == x.shape
    for i in range(0, 300, 7):
        s, t, lf = size[i].item(), top[i].item(), left[i].item()
        canvas = torch.zeros(1, 2, 10, 10)
        canvas[:, :, t : t + s, lf : lf + s] = F.interpolate(
            x[i : i + 1], size=(s, s), mode="bilinear", align_corners=False
        )
        expected = F.interpolate(canvas, size=(8, 8), mode="bilinear", align_corners=False)
        assert torch.allclose(out[i], expected[0], atol=1e-6)


def test_gaussian_noise_has_the_right_sigma_and_is_clipped():
    defense = GaussianNoise(0.04).bind(_linear_net())
    grey = torch.full((20, 3, 32, 32), 0.5)
    sample, execution = _keys(20, execution=4)
    diff = defense.transform(grey, sample, execution) - grey
    assert abs(diff.std().item() - 0.04) < 0.04 * 0.02  # 61,440 draws
    assert abs(diff.mean().item()) < 0.001
    # Different samples and executions get different noise.
    assert not torch.allclose(diff[0], diff[1])
    other = defense.transform(grey[:1], sample[:1], execution[:1] + 1) - grey[:1]
    assert not torch.allclose(diff[0], other[0])
    white = defense.transform(torch.ones(2, 3, 8, 8), *_keys(2))
    assert white.max() == 1 and white.min() < 1


# ------------------------------------------------------------------------ shared output contract


@pytest.mark.parametrize("index", range(len(_transforms())))
def test_transforms_return_log_probs_independent_of_batch_and_chunk(images, index):
    net = _linear_net()
    defense = _transforms()[index].bind(net, seed=5)
    sample_index = torch.tensor([10, 3, 7, 0, 42, 5])
    out = defense(images, sample_index)
    assert out.shape == (6, NUM_CLASSES)
    assert torch.allclose(out.exp().sum(dim=1), torch.ones(6), atol=1e-6)
    for k in range(6):
        alone = defense(images[k : k + 1], sample_index[k : k + 1])
        assert torch.allclose(alone[0], out[k], atol=1e-6)
    defense.chunk_size = 7
    assert torch.allclose(defense(images, sample_index), out, atol=1e-6)
    # The random transformations do differ from the clean input (the average is not the plain).
    assert not torch.allclose(out, F.log_softmax(net(images), dim=1), atol=1e-4)


@pytest.mark.parametrize("index", range(len(_transforms())))
def test_transforms_depend_on_seed_and_pass_gradients(images, index):
    out0 = _transforms()[index].bind(_linear_net(), seed=0)(images)
    defense = _transforms()[index].bind(_linear_net(), seed=1)
    x = images.clone().requires_grad_(True)
    out1 = defense(x)
    assert not torch.allclose(out0, out1)
    out1.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_transforms_one_forward_per_chunk(images):
    calls = []
    net = _linear_net()
    net.register_forward_hook(lambda module, args, output: calls.append(len(args[0])))
    RandomCropResize(3, 7, n_executions=5, chunk_size=12).bind(net)(images)
    assert calls == [12, 12, 6]


# ---------------------------------------------------------------------------------- MI-Combined


def _between(score: torch.Tensor) -> float:
    """A threshold halfway between the two middle scores (no score lies near it)."""
    ordered = score.sort().values
    return (ordered[2] + ordered[3]).item() / 2


def _combined(pool, **kwargs) -> MixupInferenceCombined:
    return MixupInferenceCombined(n_executions=8, **kwargs).bind(_linear_net(), pool, seed=3)


def test_combined_defaults_and_independent_inner_seeds(pool):
    defense = MixupInferenceCombined()
    assert (defense.mi_pl.mixup_ratio, defense.mi_ol.mixup_ratio) == (0.5, 0.4)
    assert defense.threshold == 0.2 and defense.clean_answer == "plain"
    assert defense.name == "MI-Combined"
    defense.bind(_linear_net(), pool, seed=3)
    assert len({defense.seed, defense.mi_pl.seed, defense.mi_ol.seed}) == 3
    with pytest.raises(ValueError):
        MixupInferenceCombined(clean_answer="other")
    with pytest.raises(ValueError):
        MixupInferenceCombined().bind(_linear_net(), None)


def test_combined_detection_score_is_the_probability_drop(pool, images):
    defense = _combined(pool)
    sample_index = torch.arange(6) + 100
    net = defense.classifier
    plain = F.softmax(net(images), dim=1)
    predicted = plain.argmax(dim=1)
    pl = MixupInference("predicted", 0.5, 8).bind(net, pool, seed=defense.mi_pl.seed)
    mi_pl = pl(images, sample_index).exp()
    rows = torch.arange(6)
    expected = plain[rows, predicted] - mi_pl[rows, predicted]
    score = defense.detection_score(images, sample_index)
    assert score.shape == (6,)
    assert torch.allclose(score, expected, atol=1e-6)


@pytest.mark.parametrize("clean_answer", ["plain", "mi_pl"])
def test_combined_switches_branch_at_the_threshold(pool, images, clean_answer):
    defense = _combined(pool, clean_answer=clean_answer)
    sample_index = torch.arange(6) * 3
    score = defense.detection_score(images, sample_index)
    net = defense.classifier
    mi_ol = defense.mi_ol(images, sample_index)
    mi_pl = defense.mi_pl(images, sample_index)
    clean = F.log_softmax(net(images), dim=1) if clean_answer == "plain" else mi_pl
    assert not torch.allclose(mi_ol, clean)
    for k in range(6):
        x, idx = images[k : k + 1], sample_index[k : k + 1]
        defense.threshold = score[k].item() - 1e-5  # flagged: MI-OL answers
        assert torch.allclose(defense(x, idx)[0], mi_ol[k], atol=1e-6)
        defense.threshold = score[k].item() + 1e-5  # not flagged: the clean answer
        assert torch.allclose(defense(x, idx)[0], clean[k], atol=1e-6)
    # A threshold between the scores mixes the branches row by row in one batch.
    defense.threshold = _between(score)
    flagged = score > defense.threshold
    assert 0 < flagged.sum() < 6
    expected = torch.where(flagged[:, None], mi_ol, clean)
    out = defense(images, sample_index)
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.allclose(out.exp().sum(dim=1), torch.ones(6), atol=1e-6)


def test_combined_batch_and_chunk_independent_with_gradients(pool, images):
    defense = _combined(pool)
    sample_index = torch.tensor([4, 8, 15, 16, 23, 42])
    defense.threshold = _between(defense.detection_score(images, sample_index))
    out = defense(images, sample_index)
    for k in range(6):
        alone = defense(images[k : k + 1], sample_index[k : k + 1])
        assert torch.allclose(alone[0], out[k], atol=1e-6)
    defense.mi_pl.chunk_size = defense.mi_ol.chunk_size = 5
    x = images.clone().requires_grad_(True)
    chunked = defense(x, sample_index)
    assert torch.allclose(chunked, out, atol=1e-6)
    chunked.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0

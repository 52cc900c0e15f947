"""Tests for the pure mixup functions in mixup_robust.mixing."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mixup_robust.mixing import (
    interpolate,
    sample_mixup_ratio,
    sample_partners,
    soft_cross_entropy,
    soft_targets,
)

# ---------------------------------------------------------------------------------- interpolate


def test_interpolate_per_sample_ratios_exact_values():
    a = torch.tensor([[[1.0, 2.0]], [[10.0, 20.0]], [[4.0, 4.0]]])  # (3, 1, 2)
    b = torch.tensor([[[3.0, 6.0]], [[0.0, 0.0]], [[8.0, 0.0]]])
    ratio = torch.tensor([0.25, 1.0, 0.5])
    out = interpolate(a, b, ratio)
    expected = torch.tensor(
        [
            [[0.25 * 1 + 0.75 * 3, 0.25 * 2 + 0.75 * 6]],
            [[10.0, 20.0]],
            [[6.0, 2.0]],
        ]
    )
    assert out.shape == a.shape
    assert torch.allclose(out, expected)


def test_interpolate_broadcasts_ratio_over_image_dims():
    torch.manual_seed(0)
    a, b = torch.rand(4, 3, 5, 5), torch.rand(4, 3, 5, 5)
    ratio = torch.tensor([0.0, 0.3, 0.7, 1.0])
    out = interpolate(a, b, ratio)
    for i in range(4):
        assert torch.allclose(out[i], ratio[i] * a[i] + (1 - ratio[i]) * b[i])
    assert torch.equal(out[0], b[0])
    assert torch.equal(out[3], a[3])


def test_interpolate_casts_ratio_to_input_dtype():
    a = torch.ones(2, 3, dtype=torch.float64)
    b = torch.zeros(2, 3, dtype=torch.float64)
    out = interpolate(a, b, torch.tensor([0.5, 0.25], dtype=torch.float32))
    assert out.dtype == torch.float64
    assert torch.equal(out, torch.tensor([[0.5] * 3, [0.25] * 3], dtype=torch.float64))


# --------------------------------------------------------------------------------- soft_targets


def test_soft_targets_mass_on_the_right_classes():
    labels = torch.tensor([0, 2, 1])
    partners = torch.tensor([1, 3, 1])
    ratio = torch.tensor([0.7, 0.25, 0.4])
    targets = soft_targets(labels, partners, ratio, num_classes=4)
    expected = torch.tensor(
        [
            [0.7, 0.3, 0.0, 0.0],
            [0.0, 0.0, 0.25, 0.75],
            [0.0, 1.0, 0.0, 0.0],  # same label on both sides: one-hot
        ]
    )
    assert targets.shape == (3, 4)
    assert torch.allclose(targets, expected)
    assert torch.allclose(targets.sum(dim=1), torch.ones(3))


def test_soft_targets_rows_sum_to_one_and_same_label_is_one_hot():
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(rng.integers(0, 10, 64))
    partner_labels = labels[torch.from_numpy(rng.permutation(64))]
    ratio = torch.from_numpy(rng.uniform(size=64)).float()
    targets = soft_targets(labels, partner_labels, ratio, num_classes=10)
    assert torch.allclose(targets.sum(dim=1), torch.ones(64))
    assert (targets >= 0).all()
    rows = torch.arange(64)
    same = labels == partner_labels
    assert torch.allclose(targets[rows[same], labels[same]], torch.ones(int(same.sum())))
    diff = ~same
    assert torch.allclose(targets[rows[diff], labels[diff]], ratio[diff])
    assert torch.allclose(targets[rows[diff], partner_labels[diff]], 1 - ratio[diff])

    one_hot = soft_targets(labels, labels, ratio, num_classes=10)
    assert torch.equal(one_hot, F.one_hot(labels, 10).float())


# --------------------------------------------------------------------------- soft_cross_entropy


def test_soft_cross_entropy_equals_cross_entropy_for_one_hot():
    torch.manual_seed(0)
    logits = torch.randn(16, 5) * 3
    labels = torch.randint(0, 5, (16,))
    loss = soft_cross_entropy(logits, F.one_hot(labels, 5).float())
    assert torch.allclose(loss, F.cross_entropy(logits, labels), atol=1e-6)


def test_soft_cross_entropy_of_mixed_targets_is_the_mixed_loss():
    """CE on soft targets = lambda * CE(label) + (1 - lambda) * CE(partner), averaged."""
    torch.manual_seed(1)
    logits = torch.randn(8, 4)
    labels = torch.randint(0, 4, (8,))
    partners = torch.randint(0, 4, (8,))
    ratio = torch.rand(8)
    loss = soft_cross_entropy(logits, soft_targets(labels, partners, ratio, 4))
    per_sample = ratio * F.cross_entropy(logits, labels, reduction="none") + (
        1 - ratio
    ) * F.cross_entropy(logits, partners, reduction="none")
    assert torch.allclose(loss, per_sample.mean(), atol=1e-6)
    # torch's own probability-target cross-entropy agrees as well.
    targets = soft_targets(labels, partners, ratio, 4)
    assert torch.allclose(loss, F.cross_entropy(logits, targets), atol=1e-6)


def test_soft_cross_entropy_gradient_flows():
    logits = torch.zeros(2, 3, requires_grad=True)
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    soft_cross_entropy(logits, targets).backward()
    # d/dlogits of mean CE = (softmax - targets) / B
    expected = (torch.full((2, 3), 1 / 3) - targets) / 2
    assert torch.allclose(logits.grad, expected, atol=1e-6)


# --------------------------------------------------------------------------- sample_mixup_ratio


@pytest.mark.parametrize("alpha", [0.0, -1.0])
def test_sample_mixup_ratio_nonpositive_alpha_gives_ones(alpha):
    ratio = sample_mixup_ratio(np.random.default_rng(0), alpha, 7)
    assert ratio.dtype == torch.float32
    assert torch.equal(ratio, torch.ones(7))


@pytest.mark.parametrize("alpha", [0.2, 1.0, 8.0])
def test_sample_mixup_ratio_in_unit_interval(alpha):
    ratio = sample_mixup_ratio(np.random.default_rng(0), alpha, 5000)
    assert ratio.shape == (5000,)
    assert ratio.dtype == torch.float32
    assert ((ratio >= 0) & (ratio <= 1)).all()


def test_sample_mixup_ratio_same_seed_same_values():
    a = sample_mixup_ratio(np.random.default_rng(42), 1.0, 100)
    b = sample_mixup_ratio(np.random.default_rng(42), 1.0, 100)
    c = sample_mixup_ratio(np.random.default_rng(43), 1.0, 100)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_sample_mixup_ratio_alpha_one_is_uniform_moments():
    """Beta(1, 1) is U(0, 1): mean 1/2, variance 1/12."""
    ratio = sample_mixup_ratio(np.random.default_rng(0), 1.0, 200_000).double()
    assert abs(ratio.mean().item() - 0.5) < 0.005
    assert abs(ratio.var().item() - 1 / 12) < 0.002


def test_sample_mixup_ratio_small_alpha_is_u_shaped():
    """Beta(0.2, 0.2) puts most mass near 0 and 1 (variance 1 / (4 (2 alpha + 1)) = 0.179)."""
    ratio = sample_mixup_ratio(np.random.default_rng(0), 0.2, 100_000).double()
    assert abs(ratio.mean().item() - 0.5) < 0.01
    assert abs(ratio.var().item() - 1 / (4 * 1.4)) < 0.005
    assert ((ratio < 0.1) | (ratio > 0.9)).double().mean() > 0.5


# ------------------------------------------------------------------------------ sample_partners


@pytest.mark.parametrize("size", [1, 2, 17, 256])
def test_sample_partners_is_a_permutation(size):
    partners = sample_partners(np.random.default_rng(size), size)
    assert partners.shape == (size,)
    assert partners.dtype == torch.int64
    assert torch.equal(torch.sort(partners).values, torch.arange(size))


def test_sample_partners_seeded_and_not_identity():
    a = sample_partners(np.random.default_rng(5), 256)
    b = sample_partners(np.random.default_rng(5), 256)
    assert torch.equal(a, b)
    assert (a != torch.arange(256)).sum() > 200

"""The class pool of MI partners (ClassPool) and the undefended model (NoDefense)."""

import pytest
import torch
import torch.nn.functional as F

from mixup_robust.defenses import ClassPool, NoDefense
from tests.helpers.defenses import (
    COUNTS,
    NUM_CLASSES,
    SHAPE,
    linear_net,
    pool_data,
)

# ------------------------------------------------------------------------------------- ClassPool


def test_pool_sorts_by_class_keeping_order_within_class():
    images, labels = pool_data()
    pool = ClassPool(images, labels, NUM_CLASSES)
    assert pool.labels.tolist() == sorted(labels.tolist())
    assert pool.counts.tolist() == list(COUNTS)
    assert pool.offsets.tolist() == [0, 3, 8, 10]
    for c in range(NUM_CLASSES):
        members = images[labels == c]  # in their original order
        start = pool.offsets[c]
        assert torch.equal(pool.images[start : start + COUNTS[c]], members)


def test_pool_index_picks_members_of_the_requested_class(pool):
    # A fine grid of uniforms in [0, 1), including the largest float64 below 1.
    uniform = torch.cat(
        [torch.linspace(0, 1, 1001, dtype=torch.float64)[:-1], torch.tensor([1 - 2**-53])]
    )
    for c in range(NUM_CLASSES):
        classes = torch.full_like(uniform, c, dtype=torch.int64)
        positions = pool.index(classes, uniform)
        assert (pool.labels[positions] == c).all()
        # Every member gets picked, each for an equal share of [0, 1).
        counts = torch.bincount(positions - pool.offsets[c], minlength=COUNTS[c])
        assert len(counts) == COUNTS[c]
        assert counts.max() - counts.min() <= 2  # 1001 grid points over COUNTS[c] bins


def test_pool_index_float32_uniform_near_one_stays_in_class(pool):
    """float32 rounding of u * count to count must not spill into the next class."""
    uniform = torch.full((NUM_CLASSES,), 1 - 2**-24, dtype=torch.float32)
    positions = pool.index(torch.arange(NUM_CLASSES), uniform)
    assert pool.labels[positions].tolist() == list(range(NUM_CLASSES))
    assert (positions == pool.offsets + pool.counts - 1).all()


def test_pool_index_any_shape(pool):
    classes = torch.tensor([[0, 1, 2], [3, 3, 0]])
    uniform = torch.tensor([[0.0, 0.5, 0.99], [0.1, 0.9, 0.6]], dtype=torch.float64)
    positions = pool.index(classes, uniform)
    assert positions.shape == (2, 3)
    assert torch.equal(pool.labels[positions], classes)
    # member = floor(u * count): class 1 (5 members) at u=0.5 is its member 2.
    assert positions[0, 1] == pool.offsets[1] + 2
    assert positions[1, 1] == pool.offsets[3] + 3


def test_pool_fetch_is_float_in_unit_interval(pool):
    positions = torch.tensor([0, 5, 13, 5])
    fetched = pool.fetch(positions)
    assert fetched.dtype == torch.float32
    assert fetched.shape == (4, *SHAPE)
    assert torch.equal(fetched, pool.images[positions].float() / 255)
    assert fetched.min() >= 0 and fetched.max() <= 1
    # fetch must not modify the stored uint8 images.
    assert pool.images.dtype == torch.uint8


def test_pool_fetch_extremes():
    images = torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1)
    pool = ClassPool(images, torch.tensor([0, 1]), num_classes=2)
    assert pool.fetch(torch.tensor([0, 1])).flatten().tolist() == [0.0, 1.0]


def test_pool_missing_class_raises():
    images, labels = pool_data()
    keep = labels != 2
    with pytest.raises(ValueError, match=r"missing \[2\]"):
        ClassPool(images[keep], labels[keep], NUM_CLASSES)


def test_pool_labels_beyond_range_raise():
    images, labels = pool_data()
    with pytest.raises(ValueError):
        ClassPool(images, labels, NUM_CLASSES - 1)


def test_pool_bad_inputs_raise():
    images, labels = pool_data()
    with pytest.raises(ValueError):
        ClassPool(images.float(), labels, NUM_CLASSES)
    with pytest.raises(ValueError):
        ClassPool(images[:, 0], labels, NUM_CLASSES)
    with pytest.raises(ValueError):
        ClassPool(images, labels[:-1], NUM_CLASSES)


def test_pool_buffers_are_not_saved_in_state_dict(pool):
    assert pool.state_dict() == {}


# ------------------------------------------------------------------------------------- NoDefense


def test_no_defense_returns_log_softmax(images):
    net = linear_net()
    defense = NoDefense().bind(net)
    out = defense(images)
    assert torch.allclose(out, F.log_softmax(net(images), dim=1))
    assert torch.allclose(out.exp().sum(dim=1), torch.ones(len(images)))
    assert defense.name == "none"
    assert NoDefense(name="bare").name == "bare"


def test_no_defense_passes_gradients(images):
    net = linear_net()
    x = images.clone().requires_grad_(True)
    NoDefense().bind(net)(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


# ---------------------------------------------------------------------- MixupInference: partners


def test_pool_labels_out_of_range_are_a_clear_error():
    images = torch.zeros(3, 1, 2, 2, dtype=torch.uint8)
    with pytest.raises(ValueError, match="must lie in"):
        ClassPool(images, torch.tensor([0, 1, -1]), 2)

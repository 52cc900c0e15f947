"""Tests for the inference-time defenses: ClassPool, NoDefense and Mixup Inference."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mixup_robust.defenses import ClassPool, MixupInference, NoDefense
from mixup_robust.nets import SmallCNN

NUM_CLASSES = 4
COUNTS = (3, 5, 2, 4)  # members per class in the pool (unequal on purpose)
SHAPE = (1, 8, 8)


class Recorder(nn.Module):
    """Wraps a classifier and keeps a copy of every batch it sees and of its logits."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.inputs: list[torch.Tensor] = []
        self.outputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x)
        self.inputs.append(x.detach().clone())
        self.outputs.append(logits.detach().clone())
        return logits

    def reset(self) -> None:
        self.inputs.clear()
        self.outputs.clear()


def _linear_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(SHAPE), NUM_CLASSES)).eval()


def _pool_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images and shuffled labels with COUNTS members per class."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(COUNTS)])
    labels = labels[torch.randperm(len(labels), generator=generator)]
    images = torch.randint(0, 256, (len(labels), *SHAPE), generator=generator, dtype=torch.uint8)
    return images, labels


@pytest.fixture
def pool() -> ClassPool:
    return ClassPool(*_pool_data(), num_classes=NUM_CLASSES)


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(5, *SHAPE, generator=torch.Generator().manual_seed(1))


def _mi(pool, classifier=None, seed=0, **kwargs) -> MixupInference:
    defense = MixupInference(**kwargs)
    return defense.bind(classifier if classifier is not None else _linear_net(), pool, seed=seed)


# ------------------------------------------------------------------------------------- ClassPool


def test_pool_sorts_by_class_keeping_order_within_class():
    images, labels = _pool_data()
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
    images, labels = _pool_data()
    keep = labels != 2
    with pytest.raises(ValueError, match=r"missing \[2\]"):
        ClassPool(images[keep], labels[keep], NUM_CLASSES)


def test_pool_labels_beyond_range_raise():
    images, labels = _pool_data()
    with pytest.raises(ValueError):
        ClassPool(images, labels, NUM_CLASSES - 1)


def test_pool_bad_inputs_raise():
    images, labels = _pool_data()
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
    net = _linear_net()
    defense = NoDefense().bind(net)
    out = defense(images)
    assert torch.allclose(out, F.log_softmax(net(images), dim=1))
    assert torch.allclose(out.exp().sum(dim=1), torch.ones(len(images)))
    assert defense.name == "none"
    assert NoDefense(name="bare").name == "bare"


def test_no_defense_passes_gradients(images):
    net = _linear_net()
    x = images.clone().requires_grad_(True)
    NoDefense().bind(net)(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


# ---------------------------------------------------------------------- MixupInference: partners


def test_mi_default_names():
    assert MixupInference("predicted").name == "MI-PL"
    assert MixupInference("other").name == "MI-OL"
    assert MixupInference("other", name="mine").name == "mine"


def test_mi_pl_partners_are_of_the_predicted_class(pool):
    defense = _mi(pool, partner_label="predicted", n_executions=200)
    predicted = torch.tensor([0, 1, 2, 3, 1, 2])
    partners = defense.partners(predicted, torch.arange(6))
    assert partners.shape == (6, 200)
    assert (pool.labels[partners] == predicted[:, None]).all()
    # Over 200 draws every member of the predicted class is used.
    for row, c in enumerate(predicted.tolist()):
        members = set(range(pool.offsets[c], pool.offsets[c] + COUNTS[c]))
        assert set(partners[row].tolist()) == members


def test_mi_ol_partners_never_of_the_predicted_class_and_cover_the_others(pool):
    defense = _mi(pool, partner_label="other", n_executions=300)
    predicted = torch.tensor([0, 1, 2, 3, 3, 0])
    partners = defense.partners(predicted, torch.arange(10, 16))
    classes = pool.labels[partners]
    assert (classes != predicted[:, None]).all()
    for row, c in enumerate(predicted.tolist()):
        others = set(range(NUM_CLASSES)) - {c}
        assert set(classes[row].tolist()) == others
        # Uniform over the 3 other classes: about 100 of 300 each.
        counts = torch.bincount(classes[row], minlength=NUM_CLASSES)
        assert all(60 < counts[o] < 140 for o in others)


def test_mi_ol_two_classes_always_picks_the_other():
    images = torch.randint(0, 256, (4, *SHAPE), dtype=torch.uint8)
    pool = ClassPool(images, torch.tensor([0, 1, 0, 1]), num_classes=2)
    defense = MixupInference("other", n_executions=50).bind(_linear_net(), pool)
    predicted = torch.tensor([0, 1, 1])
    classes = pool.labels[defense.partners(predicted, torch.arange(3))]
    assert torch.equal(classes, (1 - predicted)[:, None].expand(-1, 50))


def test_mi_different_seeds_give_different_partners(pool):
    predicted = torch.tensor([0, 1, 2, 3])
    index = torch.arange(4)
    for label in ("predicted", "other"):
        a = _mi(pool, seed=0, partner_label=label, n_executions=20).partners(predicted, index)
        b = _mi(pool, seed=0, partner_label=label, n_executions=20).partners(predicted, index)
        c = _mi(pool, seed=1, partner_label=label, n_executions=20).partners(predicted, index)
        assert torch.equal(a, b)
        assert not torch.equal(a, c)
        assert (a != c).float().mean() > 0.3


def test_mi_partners_depend_on_sample_index_not_position(pool):
    defense = _mi(pool, partner_label="other", n_executions=10)
    predicted = torch.tensor([0, 2, 1])
    index = torch.tensor([42, 7, 1000])
    together = defense.partners(predicted, index)
    for i in range(3):
        alone = defense.partners(predicted[i : i + 1], index[i : i + 1])
        assert torch.equal(alone[0], together[i])
    # The same prediction with another sample index gets other partners.
    assert not torch.equal(
        defense.partners(predicted, index), defense.partners(predicted, index + 1)
    )


# ---------------------------------------------------------------------- MixupInference: forward


def _forward_recorded(pool, images, sample_index=None, **kwargs):
    """Runs MI through a Recorder; returns output, recorder, predicted and partners."""
    recorder = Recorder(_linear_net())
    defense = _mi(pool, classifier=recorder, **kwargs)
    out = defense(images, sample_index)
    predicted = recorder.outputs[0].argmax(dim=1)
    if sample_index is None:
        sample_index = torch.arange(len(images))
    partners = defense.partners(predicted, sample_index)
    return out, recorder, predicted, partners


@pytest.mark.parametrize("label", ["predicted", "other"])
@pytest.mark.parametrize("ratio", [0.5, 0.6, 0.0])
def test_mi_mixed_inputs_are_lambda_x_plus_rest_pool_partner(pool, images, label, ratio):
    """Call 1 is the clean batch (prediction); the rest are the B x N mixed images."""
    n = 6
    out, recorder, predicted, partners = _forward_recorded(
        pool, images, partner_label=label, mixup_ratio=ratio, n_executions=n
    )
    assert torch.equal(recorder.inputs[0], images)
    mixed = torch.cat(recorder.inputs[1:])
    assert mixed.shape == (len(images) * n, *SHAPE)
    mixed = mixed.view(len(images), n, *SHAPE)
    for b in range(len(images)):
        for k in range(n):
            partner = pool.images[partners[b, k]].float() / 255
            expected = ratio * images[b] + (1 - ratio) * partner
            assert torch.allclose(mixed[b, k], expected, atol=1e-6)
    # Sanity of the reported partners themselves.
    if label == "predicted":
        assert (pool.labels[partners] == predicted[:, None]).all()
    else:
        assert (pool.labels[partners] != predicted[:, None]).all()


@pytest.mark.parametrize("label", ["predicted", "other"])
def test_mi_output_is_log_mean_softmax_of_partner_logits(pool, images, label):
    n = 5
    out, recorder, _, _ = _forward_recorded(pool, images, partner_label=label, n_executions=n)
    logits = torch.cat(recorder.outputs[1:]).view(len(images), n, NUM_CLASSES)
    expected = torch.log(F.softmax(logits, dim=2).mean(dim=1))
    assert out.shape == (len(images), NUM_CLASSES)
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.allclose(out.exp().sum(dim=1), torch.ones(len(images)), atol=1e-6)
    assert (out <= 0).all()


def test_mi_single_execution_is_log_softmax_of_the_mixed_image(pool, images):
    out, recorder, _, _ = _forward_recorded(pool, images, n_executions=1)
    assert torch.allclose(out, F.log_softmax(recorder.outputs[1], dim=1), atol=1e-6)


def test_mi_output_stable_for_extreme_logits(pool, images):
    """Large logits must not overflow: log-mean-exp in log space stays finite."""
    net = _linear_net()
    with torch.no_grad():
        net[1].weight.mul_(1e4)
    out = _mi(pool, classifier=net, n_executions=4)(images)
    assert torch.isfinite(out).all()
    assert torch.allclose(out.exp().sum(dim=1), torch.ones(len(images)), atol=1e-5)


@pytest.mark.parametrize("label", ["predicted", "other"])
def test_mi_chunked_equals_unchunked(pool, images, label):
    batch, n, chunk = len(images), 6, 7  # 30 mixed images, 7 does not divide 30
    torch.manual_seed(0)
    net = SmallCNN(SHAPE[0], NUM_CLASSES, width=4).eval()
    small = Recorder(net)
    large = Recorder(net)
    out_small = _mi(pool, small, seed=3, partner_label=label, n_executions=n, chunk_size=chunk)(
        images
    )
    out_large = _mi(pool, large, seed=3, partner_label=label, n_executions=n, chunk_size=4096)(
        images
    )
    assert torch.allclose(out_small, out_large, atol=1e-6)
    sizes = [len(x) for x in small.inputs[1:]]
    assert sizes == [7, 7, 7, 7, 2]
    assert [len(x) for x in large.inputs[1:]] == [batch * n]
    assert torch.equal(torch.cat(small.inputs[1:]), torch.cat(large.inputs[1:]))


def test_mi_chunk_size_one_and_exact_divisor(pool, images):
    reference = _mi(pool, n_executions=4, chunk_size=4096)(images)
    for chunk in (1, 4, 20):
        recorder = Recorder(_linear_net())
        out = _mi(pool, recorder, n_executions=4, chunk_size=chunk)(images)
        assert torch.allclose(out, reference, atol=1e-6)
        assert all(len(x) <= chunk for x in recorder.inputs[1:])
        assert sum(len(x) for x in recorder.inputs[1:]) == len(images) * 4


@pytest.mark.parametrize("label", ["predicted", "other"])
def test_mi_sample_output_independent_of_batch(pool, images, label):
    defense = _mi(pool, partner_label=label, n_executions=8, chunk_size=5)
    index = torch.tensor([17, 3, 250, 9, 64])
    together = defense(images, index)
    for i in range(len(images)):
        alone = defense(images[i : i + 1], index[i : i + 1])
        assert torch.allclose(alone[0], together[i], atol=1e-6)
    # Reordering the batch reorders the output.
    order = torch.tensor([4, 2, 0, 3, 1])
    assert torch.allclose(defense(images[order], index[order]), together[order], atol=1e-6)


def test_mi_default_sample_index_is_arange(pool, images):
    defense = _mi(pool, n_executions=5)
    assert torch.equal(defense(images), defense(images, torch.arange(len(images))))
    assert not torch.allclose(defense(images), defense(images, torch.arange(len(images)) + 100))


def test_mi_different_seeds_change_the_output(pool, images):
    a = _mi(pool, seed=0, n_executions=3)(images)
    b = _mi(pool, seed=0, n_executions=3)(images)
    c = _mi(pool, seed=1, n_executions=3)(images)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("label", ["predicted", "other"])
@pytest.mark.parametrize("kind", ["linear", "cnn"])
def test_mi_ratio_one_equals_no_defense(pool, images, label, kind):
    torch.manual_seed(0)
    net = _linear_net() if kind == "linear" else SmallCNN(SHAPE[0], NUM_CLASSES, width=4).eval()
    mi = _mi(pool, classifier=net, partner_label=label, mixup_ratio=1.0, n_executions=7)
    bare = NoDefense().bind(net)
    assert torch.allclose(mi(images), bare(images), atol=1e-6)


def test_mi_gradient_flows_to_the_input(pool, images):
    """An adaptive attack differentiates through the MI average."""
    x = images.clone().requires_grad_(True)
    _mi(pool, n_executions=3, mixup_ratio=0.6)(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


# ------------------------------------------------------------------------ MixupInference: errors


def test_mi_bind_without_pool_raises():
    with pytest.raises(ValueError, match="pool"):
        MixupInference().bind(_linear_net())


def test_unbound_forward_raises(images):
    with pytest.raises(RuntimeError, match="bind"):
        MixupInference()(images)
    with pytest.raises(RuntimeError, match="bind"):
        NoDefense()(images)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"partner_label": "label"},
        {"mixup_ratio": -0.1},
        {"mixup_ratio": 1.5},
        {"n_executions": 0},
        {"chunk_size": 0},
    ],
)
def test_mi_invalid_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        MixupInference(**kwargs)


def test_bind_returns_self_and_registers_modules(pool):
    net = _linear_net()
    defense = MixupInference()
    assert defense.bind(net, pool, seed=5) is defense
    assert defense.classifier is net and defense.pool is pool and defense.seed == 5
    assert dict(defense.named_children()) == {"classifier": net, "pool": pool}


def test_pool_labels_out_of_range_are_a_clear_error():
    images = torch.zeros(3, 1, 2, 2, dtype=torch.uint8)
    with pytest.raises(ValueError, match="must lie in"):
        ClassPool(images, torch.tensor([0, 1, -1]), 2)

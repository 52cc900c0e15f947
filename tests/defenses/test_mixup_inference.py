"""Mixup Inference: partners by class, the mixed inputs, the averaged output, chunking, errors."""

import pytest
import torch
import torch.nn.functional as F

from mixup_robust.defenses import ClassPool, MixupInference, NoDefense
from mixup_robust.nets import SmallCNN
from tests.helpers.defenses import (
    COUNTS,
    NUM_CLASSES,
    SHAPE,
    Recorder,
    bound_mi,
    linear_net,
)

# ------------------------------------------------------------------------------------- ClassPool


def test_mi_default_names():
    assert MixupInference("predicted").name == "MI-PL"
    assert MixupInference("other").name == "MI-OL"
    assert MixupInference("other", name="mine").name == "mine"


def test_mi_pl_partners_are_of_the_predicted_class(pool):
    defense = bound_mi(pool, partner_label="predicted", n_executions=200)
    predicted = torch.tensor([0, 1, 2, 3, 1, 2])
    partners = defense.partners(predicted, torch.arange(6))
    assert partners.shape == (6, 200)
    assert (pool.labels[partners] == predicted[:, None]).all()
    # Over 200 draws every member of the predicted class is used.
    for row, c in enumerate(predicted.tolist()):
        members = set(range(pool.offsets[c], pool.offsets[c] + COUNTS[c]))
        assert set(partners[row].tolist()) == members


def test_mi_ol_partners_never_of_the_predicted_class_and_cover_the_others(pool):
    defense = bound_mi(pool, partner_label="other", n_executions=300)
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
    defense = MixupInference("other", n_executions=50).bind(linear_net(), pool)
    predicted = torch.tensor([0, 1, 1])
    classes = pool.labels[defense.partners(predicted, torch.arange(3))]
    assert torch.equal(classes, (1 - predicted)[:, None].expand(-1, 50))


def test_mi_different_seeds_give_different_partners(pool):
    predicted = torch.tensor([0, 1, 2, 3])
    index = torch.arange(4)
    for label in ("predicted", "other"):
        a = bound_mi(pool, seed=0, partner_label=label, n_executions=20).partners(predicted, index)
        b = bound_mi(pool, seed=0, partner_label=label, n_executions=20).partners(predicted, index)
        c = bound_mi(pool, seed=1, partner_label=label, n_executions=20).partners(predicted, index)
        assert torch.equal(a, b)
        assert not torch.equal(a, c)
        assert (a != c).float().mean() > 0.3


def test_mi_partners_depend_on_sample_index_not_position(pool):
    defense = bound_mi(pool, partner_label="other", n_executions=10)
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
    recorder = Recorder(linear_net())
    defense = bound_mi(pool, classifier=recorder, **kwargs)
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
    _, recorder, predicted, partners = _forward_recorded(
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
    net = linear_net()
    with torch.no_grad():
        net[1].weight.mul_(1e4)
    out = bound_mi(pool, classifier=net, n_executions=4)(images)
    assert torch.isfinite(out).all()
    assert torch.allclose(out.exp().sum(dim=1), torch.ones(len(images)), atol=1e-5)


@pytest.mark.parametrize("label", ["predicted", "other"])
def test_mi_chunked_equals_unchunked(pool, images, label):
    batch, n, chunk = len(images), 6, 7  # 30 mixed images, 7 does not divide 30
    torch.manual_seed(0)
    net = SmallCNN(SHAPE[0], NUM_CLASSES, width=4).eval()
    small = Recorder(net)
    large = Recorder(net)
    out_small = bound_mi(
        pool, small, seed=3, partner_label=label, n_executions=n, chunk_size=chunk
    )(images)
    out_large = bound_mi(pool, large, seed=3, partner_label=label, n_executions=n, chunk_size=4096)(
        images
    )
    assert torch.allclose(out_small, out_large, atol=1e-6)
    sizes = [len(x) for x in small.inputs[1:]]
    assert sizes == [7, 7, 7, 7, 2]
    assert [len(x) for x in large.inputs[1:]] == [batch * n]
    assert torch.equal(torch.cat(small.inputs[1:]), torch.cat(large.inputs[1:]))


def test_mi_chunk_size_one_and_exact_divisor(pool, images):
    reference = bound_mi(pool, n_executions=4, chunk_size=4096)(images)
    for chunk in (1, 4, 20):
        recorder = Recorder(linear_net())
        out = bound_mi(pool, recorder, n_executions=4, chunk_size=chunk)(images)
        assert torch.allclose(out, reference, atol=1e-6)
        assert all(len(x) <= chunk for x in recorder.inputs[1:])
        assert sum(len(x) for x in recorder.inputs[1:]) == len(images) * 4


@pytest.mark.parametrize("label", ["predicted", "other"])
def test_mi_sample_output_independent_of_batch(pool, images, label):
    defense = bound_mi(pool, partner_label=label, n_executions=8, chunk_size=5)
    index = torch.tensor([17, 3, 250, 9, 64])
    together = defense(images, index)
    for i in range(len(images)):
        alone = defense(images[i : i + 1], index[i : i + 1])
        assert torch.allclose(alone[0], together[i], atol=1e-6)
    # Reordering the batch reorders the output.
    order = torch.tensor([4, 2, 0, 3, 1])
    assert torch.allclose(defense(images[order], index[order]), together[order], atol=1e-6)


def test_mi_default_sample_index_is_arange(pool, images):
    defense = bound_mi(pool, n_executions=5)
    assert torch.equal(defense(images), defense(images, torch.arange(len(images))))
    assert not torch.allclose(defense(images), defense(images, torch.arange(len(images)) + 100))


def test_mi_different_seeds_change_the_output(pool, images):
    a = bound_mi(pool, seed=0, n_executions=3)(images)
    b = bound_mi(pool, seed=0, n_executions=3)(images)
    c = bound_mi(pool, seed=1, n_executions=3)(images)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("label", ["predicted", "other"])
@pytest.mark.parametrize("kind", ["linear", "cnn"])
def test_mi_ratio_one_equals_no_defense(pool, images, label, kind):
    torch.manual_seed(0)
    net = linear_net() if kind == "linear" else SmallCNN(SHAPE[0], NUM_CLASSES, width=4).eval()
    mi = bound_mi(pool, classifier=net, partner_label=label, mixup_ratio=1.0, n_executions=7)
    bare = NoDefense().bind(net)
    assert torch.allclose(mi(images), bare(images), atol=1e-6)


def test_mi_gradient_flows_to_the_input(pool, images):
    """An adaptive attack differentiates through the MI average."""
    x = images.clone().requires_grad_(True)
    bound_mi(pool, n_executions=3, mixup_ratio=0.6)(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


# ------------------------------------------------------------------------ MixupInference: errors


def test_mi_bind_without_pool_raises():
    with pytest.raises(ValueError, match="pool"):
        MixupInference().bind(linear_net())


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
    net = linear_net()
    defense = MixupInference()
    assert defense.bind(net, pool, seed=5) is defense
    assert defense.classifier is net and defense.pool is pool and defense.seed == 5
    assert dict(defense.named_children()) == {"classifier": net, "pool": pool}

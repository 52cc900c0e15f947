"""Adversarial training: the inner PGD, AT, TRADES and interpolated AT, and their configs."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mixup_robust.attacks import InnerPGD
from mixup_robust.training import (
    ERM,
    TRADES,
    AdversarialTraining,
    InterpolatedAT,
    Mixup,
)
from mixup_robust.training.adversarial_training import cross_entropy_loss
from tests.helpers.cli import fit_quickstart
from tests.helpers.training import tiny_batch, tiny_module

EPS, STEP = 32 / 255, 8 / 255


def bn_stats(model: nn.Module) -> list[torch.Tensor]:
    return [
        b.clone() for name, b in model.named_buffers() if "running" in name or "tracked" in name
    ]


def attack(steps: int = 5, **kwargs) -> InnerPGD:
    return InnerPGD(EPS, STEP, steps, **kwargs)


def test_inner_pgd_increases_the_loss_and_every_iterate_stays_in_budget():
    classifier = tiny_module(ERM).classifier.eval()
    images, labels = tiny_batch()
    loss = cross_entropy_loss(labels)
    for steps in range(4):  # iterate k is the output of a k-step attack with the same rng
        adversarial = attack(steps)(classifier, images, loss, np.random.default_rng(0))
        assert (adversarial - images).abs().max() <= EPS + 1e-6
        assert adversarial.min() >= 0 and adversarial.max() <= 1
    with torch.no_grad():
        assert loss(classifier(adversarial)) > loss(classifier(images))


def test_random_start_comes_from_the_batch_rng_not_the_global_one():
    classifier = tiny_module(ERM).classifier.eval()
    images, labels = tiny_batch()
    run = lambda seed: attack(2)(  # noqa: E731
        classifier, images, cross_entropy_loss(labels), np.random.default_rng(seed)
    )
    first = run(3)
    torch.manual_seed(123)  # the global RNG must not matter
    assert torch.equal(run(3), first)
    assert not torch.equal(run(4), first)
    start = attack().random_start(images, np.random.default_rng(3))
    assert 0 < (start - images).abs().max() <= EPS + 1e-6


@pytest.mark.parametrize("bn_mode", ["eval", "train"])
def test_attack_restores_modes_and_leaves_bn_stats_and_grads_alone(bn_mode):
    classifier = tiny_module(ERM).classifier.train()
    frozen = next(m for m in classifier.modules() if isinstance(m, nn.BatchNorm2d)).eval()
    images, labels = tiny_batch()
    F.cross_entropy(classifier(images), labels).backward()
    grads = [p.grad.clone() for p in classifier.parameters()]
    stats = bn_stats(classifier)
    seen = []
    loss = cross_entropy_loss(labels)

    def spy(logits):
        seen.append(classifier.training)
        return loss(logits)

    attack(3, bn_mode=bn_mode)(classifier, images, spy, np.random.default_rng(0))
    assert seen == [bn_mode == "train"] * 3
    assert classifier.training and not frozen.training
    assert all(m.training for m in classifier.modules() if m is not frozen)
    assert all(torch.equal(a, b) for a, b in zip(bn_stats(classifier), stats, strict=True))
    assert all(torch.equal(p.grad, g) for p, g in zip(classifier.parameters(), grads, strict=True))


def test_attack_may_update_bn_stats_when_asked():
    classifier = tiny_module(ERM).classifier.train()
    images, labels = tiny_batch()
    stats = bn_stats(classifier)
    attack(2, bn_mode="train", update_bn_stats=True)(
        classifier, images, cross_entropy_loss(labels), np.random.default_rng(0)
    )
    assert not torch.equal(bn_stats(classifier)[0], stats[0])


def test_at_with_no_adversarial_fraction_is_erm_and_otherwise_costs_more():
    images, labels = tiny_batch()
    erm = tiny_module(ERM).train()
    at = tiny_module(AdversarialTraining, adversarial_fraction=0.0).train()
    at.load_state_dict(erm.state_dict())
    rng = np.random.default_rng
    assert torch.equal(
        at.training_loss(images, labels, rng(0)), erm.training_loss(images, labels, rng(0))
    )
    madry = tiny_module(AdversarialTraining, eps=EPS, step_size=STEP, steps=3).eval()
    clean = F.cross_entropy(madry(images), labels)
    assert madry.training_loss(images, labels, rng(0)) > clean
    with pytest.raises(ValueError, match="adversarial_fraction"):
        tiny_module(AdversarialTraining, adversarial_fraction=1.5)


@pytest.mark.parametrize("ratio_per", ["sample", "batch"])
def test_iat_without_budget_is_mixup_with_the_same_draws(ratio_per):
    images, labels = tiny_batch()
    mixup = tiny_module(Mixup, ratio_per=ratio_per).train()
    iat = tiny_module(InterpolatedAT, eps=0.0, ratio_per=ratio_per).train()
    iat.load_state_dict(mixup.state_dict())
    expected = mixup.training_loss(images, labels, np.random.default_rng(5))
    assert torch.equal(iat.training_loss(images, labels, np.random.default_rng(5)), expected)


def test_iat_adversarial_half_raises_the_loss_and_separate_draws_differ():
    images, labels = tiny_batch()
    iat = tiny_module(InterpolatedAT, eps=EPS, step_size=STEP, steps=3).eval()
    clean = tiny_module(InterpolatedAT, eps=0.0).eval()
    clean.load_state_dict(iat.state_dict())
    rng = np.random.default_rng
    assert iat.training_loss(images, labels, rng(1)) > clean.training_loss(images, labels, rng(1))
    separate = tiny_module(InterpolatedAT, eps=0.0, share_mixing=False).eval()
    separate.load_state_dict(iat.state_dict())
    assert separate.training_loss(images, labels, rng(1)) != clean.training_loss(
        images, labels, rng(1)
    )


def test_iat_can_attack_the_predicted_labels():
    images, labels = tiny_batch()
    iat = tiny_module(InterpolatedAT, eps=EPS, step_size=STEP, steps=3, attack_labels="predicted")
    iat.eval()
    predicted = iat(images).argmax(1)
    assert not torch.equal(predicted, labels)
    adversarial = iat.adversarial_examples(images, labels, np.random.default_rng(0))
    with torch.no_grad():
        assert F.cross_entropy(iat(adversarial), predicted) > F.cross_entropy(
            iat(images), predicted
        )
    expected = iat.inner_attack(
        iat.classifier, images, cross_entropy_loss(predicted), np.random.default_rng(0)
    )
    assert torch.equal(adversarial, expected)


def test_trades_with_zero_beta_is_cross_entropy_and_kl_is_positive_otherwise():
    images, labels = tiny_batch()
    plain = tiny_module(TRADES, beta=0.0).train()
    logits = plain(images)
    assert torch.equal(plain.training_loss(images, labels, np.random.default_rng(0)),
                       F.cross_entropy(logits, labels))  # fmt: skip
    trades = tiny_module(TRADES, eps=EPS, step_size=STEP, steps=3, beta=6.0).eval()
    loss = trades.training_loss(images, labels, np.random.default_rng(0))
    assert loss > F.cross_entropy(trades(images), labels)
    adversarial = trades.adversarial_examples(images, np.random.default_rng(0))
    assert (adversarial - images).abs().max() <= EPS + 1e-6


@pytest.mark.parametrize("method", ["at", "trades", "iat"])
def test_quickstart_config_trains_one_epoch(method, tmp_path):
    checkpoint = fit_quickstart(tmp_path, method, 1, "--model.init_args.steps", "1")
    assert checkpoint.exists()

"""Adversarially optimized mixup: equality with Mixup, the inner PGD, the geometric label rule."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from mixup_robust.mixing import geometric_weight, interpolate
from mixup_robust.nets import SmallCNN
from mixup_robust.training import AdversariallyOptimizedMixup, Mixup
from mixup_robust.training.aomixup import MixupPoint
from tests.helpers.cli import fit_digits


def tiny(method=AdversariallyOptimizedMixup, **kwargs):
    torch.manual_seed(0)
    options = {"num_classes": 4, "image_shape": (1, 8, 8), "mean": (0.5,), "std": (0.25,)}
    return method(SmallCNN, **(options | kwargs))


def batch(size: int = 8):
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(size, 1, 8, 8, generator=generator)
    images[0] = 1.0  # saturated pixels: the clip of x_mix must not change them
    images[1, :, :4] = 0.0
    return images, torch.arange(size) % 4


def gradients(module: nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in module.parameters()]


def test_zero_budget_fixed_ratio_mixup_labels_equals_a_mixup_step():
    images, labels = batch()
    mixup = tiny(Mixup).train()
    aomixup = tiny(eps=0.0, steps=3, random_start=True).train()
    aomixup.load_state_dict(mixup.state_dict())
    expected = mixup.training_loss(images, labels, np.random.default_rng(3))
    loss = aomixup.training_loss(images, labels, np.random.default_rng(3))
    assert torch.equal(loss, expected)
    expected.backward()
    loss.backward()
    assert all(map(torch.equal, gradients(aomixup), gradients(mixup)))
    for module in (mixup, aomixup):
        torch.optim.SGD(module.parameters(), lr=0.1).step()
    assert all(map(torch.equal, aomixup.parameters(), mixup.parameters()))
    # batch-norm statistics: the inner loop ran in eval mode and left them alone
    assert all(map(torch.equal, aomixup.buffers(), mixup.buffers()))


@pytest.mark.parametrize("label_rule", ["mixup", "geometric"])
def test_every_iterate_stays_in_its_sets_and_the_loss_increases(label_rule):
    module = tiny(
        eps="64/255", step_size="16/255", optimize_ratio=True, ratio_radius=0.2,
        ratio_step_size=0.05, label_rule=label_rule, std=(0.02,),  # a sensitive random net
    ).eval()  # fmt: skip
    images, labels = batch(16)
    pairs = module.pair_batch(images, labels, np.random.default_rng(0))
    point = module.start_point(pairs, np.random.default_rng(1))
    with torch.no_grad():
        losses = [module.point_loss(pairs, point).item()]
    eps = 64 / 255 + 1e-6
    for _ in range(5):
        point = module.ascent_step(pairs, point)
        for perturbed, clean in ((point.images, pairs.images), (point.partners, pairs.partners)):
            assert (perturbed - clean).abs().max() <= eps
            assert perturbed.min() >= 0 and perturbed.max() <= 1
        mixed = point.mixed()
        assert mixed.min() >= 0 and mixed.max() <= 1
        assert (point.ratio >= pairs.low).all() and (point.ratio <= pairs.high).all()
        assert (pairs.low >= 0).all() and (pairs.high <= 1).all()
        assert (pairs.high - pairs.low <= 0.4 + 1e-6).all()
        with torch.no_grad():
            losses.append(module.point_loss(pairs, point).item())
    assert losses[-1] > losses[0] + 0.05
    ascents = sum(b > a for a, b in itertools.pairwise(losses))
    assert ascents >= 4  # (nearly) every step ascends
    assert not torch.equal(point.ratio, pairs.ratio)  # lambda moved inside its interval


def test_ratio_stays_fixed_when_not_optimized_and_parameters_get_no_gradient():
    module = tiny(eps="16/255", steps=3)
    images, labels = batch()
    pairs = module.pair_batch(images, labels, np.random.default_rng(0))
    point = module.maximize(pairs, np.random.default_rng(0))
    assert torch.equal(point.ratio, pairs.ratio)
    assert torch.equal(pairs.low, pairs.ratio) and torch.equal(pairs.high, pairs.ratio)
    assert all(p.grad is None for p in module.parameters())
    assert not point.images.requires_grad and not point.partners.requires_grad


def test_inner_loop_runs_in_eval_mode_and_restores_each_mode():
    module = tiny(eps="8/255", steps=2).train()
    norms = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    norms[0].eval()  # a submodule kept in eval by the user stays so
    seen = []
    original = module.ascent_step

    def spy(pairs, point):
        seen.append([m.training for m in module.modules()])
        return original(pairs, point)

    module.ascent_step = spy
    before = {m: m.training for m in module.modules()}
    images, labels = batch()
    module.training_loss(images, labels, np.random.default_rng(0))
    assert len(seen) == 2 and not any(any(modes) for modes in seen)
    assert {m: m.training for m in module.modules()} == before
    assert module.training and not norms[0].training


def test_geometric_weight_is_the_ratio_without_perturbation_and_follows_the_point():
    images, _ = batch()
    partners = images.flip(0)
    ratio = torch.linspace(0.1, 0.9, 8)
    mixed = interpolate(images, partners, ratio)
    assert torch.allclose(geometric_weight(mixed, images, partners), ratio, atol=1e-5)
    # moving the point towards x_i raises w, towards x_j lowers it; off-segment moves project
    towards = geometric_weight(mixed + 0.1 * (images - partners), images, partners)
    away = geometric_weight(mixed - 0.1 * (images - partners), images, partners)
    assert (towards > ratio + 0.05).all() and (away < ratio - 0.05).all()
    assert torch.allclose(
        geometric_weight(images + 5 * (images - partners), images, partners), torch.ones(8)
    )
    # x_i = x_j: the fallback, and a finite gradient
    same = mixed.clone().requires_grad_(True)
    weight = geometric_weight(same, images, images, fallback=ratio)
    assert torch.equal(weight, ratio)
    weight.sum().backward()
    assert torch.isfinite(same.grad).all()


def test_geometric_rule_targets_follow_the_mixed_point():
    module = tiny(eps="32/255", label_rule="geometric")
    images, labels = batch()
    pairs = module.pair_batch(images, labels, np.random.default_rng(0))
    clean = MixupPoint(pairs.images, pairs.partners, pairs.ratio)
    assert torch.allclose(module.mix_weight(pairs, clean, clean.mixed()), pairs.ratio, atol=1e-5)
    moved = MixupPoint(project_towards(pairs.images, pairs.partners), pairs.partners, pairs.ratio)
    weight = module.mix_weight(pairs, moved, moved.mixed())
    assert not torch.allclose(weight, pairs.ratio, atol=1e-3)


def project_towards(images: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
    """x_i moved 32/255 towards x_j (sign of the difference), kept in [0, 1]."""
    return (images + 32 / 255 * (partners - images).sign()).clamp(0, 1)


def test_options_are_validated():
    with pytest.raises(ValueError, match="eps"):
        tiny(eps=8)
    with pytest.raises(ValueError, match="mixup_loss_weight"):
        tiny(mixup_loss_weight=1.5)
    with pytest.raises(ValueError, match="label_rule"):
        tiny(label_rule="nearest")


def test_mixup_loss_weight_mixes_in_the_clean_mixup_loss():
    images, labels = batch()
    mixup = tiny(Mixup)
    clean = mixup.training_loss(images, labels, np.random.default_rng(2))
    adversarial = tiny(eps="16/255", steps=2).training_loss(
        images, labels, np.random.default_rng(2)
    )
    mixed = tiny(eps="16/255", steps=2, mixup_loss_weight=0.25)
    loss = mixed.training_loss(images, labels, np.random.default_rng(2))
    assert torch.allclose(loss, 0.75 * adversarial + 0.25 * clean, atol=1e-6)


def test_cli_trains_one_epoch_on_the_digits(tmp_path):
    checkpoint = fit_digits(
        tmp_path, "aomixup", 1,
        "--model.init_args.optimize_ratio", "true",
        "--model.init_args.label_rule", "geometric",
        "--model.init_args.mixup_loss_weight", "0.5",
    )  # fmt: skip
    hparams = torch.load(checkpoint, map_location="cpu", weights_only=True)["hyper_parameters"]
    assert hparams["_class_path"].endswith("AdversariallyOptimizedMixup")
    assert hparams["eps"] == "32/255" and hparams["label_rule"] == "geometric"
    assert hparams["optimize_ratio"] and hparams["mixup_loss_weight"] == 0.5

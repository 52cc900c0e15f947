"""Tests for attack budgets and the PGD attack (tiny models, CPU)."""

import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mixup_robust.attacks import PGD, Attack, parse_budget
from mixup_robust.defenses import NoDefense

# ---------------------------------------------------------------------------------- parse_budget


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("8/255", 8 / 255),
        ("2/255", 2 / 255),
        (" 8 / 255 ", 8 / 255),
        ("0.5", 0.5),
        ("0", 0.0),
        ("1", 1.0),
        (0.03, 0.03),
        (0, 0.0),
        (1, 1.0),
    ],
)
def test_parse_budget_values(value, expected):
    result = parse_budget(value)
    assert isinstance(result, float)
    assert result == pytest.approx(expected, rel=1e-12, abs=0)


@pytest.mark.parametrize("value", ["8", 8, 8.0, "16/2"])
def test_parse_budget_pixel_values_rejected_with_hint(value):
    with pytest.raises(ValueError, match="255"):
        parse_budget(value, "eps")


@pytest.mark.parametrize("value", ["abc", "8/", "8/0", "", "eight/255", "-1/255", -0.1])
def test_parse_budget_garbage_rejected(value):
    with pytest.raises(ValueError, match="eps"):
        parse_budget(value, "eps")


# ------------------------------------------------------------------------------------ models


def _toy_data(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes of 1x4x4 images in [0.2, 0.8]: class 1 is brighter on the left half."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    images = 0.35 + 0.1 * torch.rand(n, 1, 4, 4, generator=generator)
    images[:, :, :, :2] += 0.2 * labels.view(-1, 1, 1, 1) - 0.1
    return images.clamp(0.2, 0.8), labels


def _trained(model: nn.Module, steps: int = 10) -> nn.Module:
    """Fits the model on the toy data for a few full-batch SGD steps."""
    images, labels = _toy_data()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(images), labels).backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return model


def _linear_net() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 2))


def _net_with_modes() -> nn.Module:
    """A model whose train and eval modes differ (BatchNorm and Dropout)."""
    return nn.Sequential(
        nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(8, 2),
    )  # fmt: skip


@functools.cache
def _trained_state(factory) -> dict:
    """Fixed-seed weights trained once per session (each test loads a fresh copy)."""
    torch.manual_seed(0)
    return _trained(factory()).state_dict()


def _linear_model() -> nn.Module:
    model = _linear_net()
    model.load_state_dict(_trained_state(_linear_net))
    return model


def _model_with_modes() -> nn.Module:
    model = _net_with_modes()
    model.load_state_dict(_trained_state(_net_with_modes))
    return model


def _loss(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return F.cross_entropy(model(images), labels).item()


# ------------------------------------------------------------------------------------------ PGD


def test_toy_model_is_accurate():
    """The attacked model is a real classifier, so raising its loss means something."""
    model = _linear_model().eval()
    images, labels = _toy_data(64, seed=9)
    with torch.no_grad():
        accuracy = (model(images).argmax(dim=1) == labels).float().mean()
    assert accuracy >= 0.9


@pytest.mark.parametrize("random_start", [True, False])
def test_pgd_stays_in_eps_ball_and_unit_box_and_raises_loss(random_start):
    model = _linear_model().eval()
    images, labels = _toy_data(32, seed=1)
    clean_loss = _loss(model, images, labels)
    attack = PGD(eps="8/255", step_size="2/255", steps=10, random_start=random_start)
    torch.manual_seed(0)
    adv = attack(model, images, labels)
    assert adv.shape == images.shape
    assert not adv.requires_grad
    assert (adv - images).abs().max() <= 8 / 255 + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1
    assert (adv - images).abs().max() > 4 / 255  # it actually moved
    assert _loss(model, adv, labels) > clean_loss + 0.05


def test_pgd_respects_unit_box_at_the_borders():
    """Pixels at 0 or 1 cannot leave [0, 1] even when the gradient pushes outwards."""
    model = _linear_model().eval()
    images, labels = _toy_data(16, seed=2)
    images[:, :, 0, :] = 0.0
    images[:, :, 1, :] = 1.0
    adv = PGD(eps=0.1, step_size=0.05, steps=5)(model, images, labels)
    assert adv.min() >= 0 and adv.max() <= 1
    assert (adv - images).abs().max() <= 0.1 + 1e-6


def test_pgd_one_step_without_random_start_is_a_signed_gradient_step():
    model = _linear_model().eval()
    images, labels = _toy_data(8, seed=3)
    x = images.clone().requires_grad_(True)
    F.cross_entropy(model(x), labels).backward()
    expected = (images + 0.02 * x.grad.sign()).clamp(0, 1)
    model.zero_grad(set_to_none=True)
    adv = PGD(eps=0.05, step_size=0.02, steps=1, random_start=False)(model, images, labels)
    assert torch.allclose(adv, expected, atol=1e-6)


def test_pgd_large_step_is_projected_onto_the_eps_ball():
    model = _linear_model().eval()
    images, labels = _toy_data(8, seed=4)
    adv = PGD(eps=0.01, step_size=0.5, steps=3, random_start=False)(model, images, labels)
    assert torch.allclose((adv - images).abs(), torch.full_like(images, 0.01), atol=1e-6)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_pgd_restores_training_mode_and_leaves_model_untouched(mode):
    model = _model_with_modes()
    getattr(model, mode)()
    modes = {name: m.training for name, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    images, labels = _toy_data(16, seed=5)
    adv = PGD(eps="8/255", steps=3)(model, images, labels)
    assert {name: m.training for name, m in model.named_modules()} == modes
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key  # weights and BatchNorm statistics
    assert all(p.grad is None for p in model.parameters())
    assert (adv - images).abs().max() <= 8 / 255 + 1e-6


def test_pgd_restores_mixed_per_module_modes():
    """A model in train mode with a frozen (eval) BatchNorm must keep that BatchNorm in eval."""
    model = _model_with_modes().train()
    model[2].eval()
    modes = {name: m.training for name, m in model.named_modules()}
    images, labels = _toy_data(16, seed=5)
    PGD(eps="8/255", steps=1)(model, images, labels)
    assert {name: m.training for name, m in model.named_modules()} == modes


def test_pgd_on_frozen_model_still_perturbs():
    """A frozen classifier (requires_grad_(False), as in evaluation) still gets attacked."""
    model = _linear_model().eval().requires_grad_(False)
    images, labels = _toy_data(16, seed=10)
    adv = PGD(eps="8/255", steps=3, random_start=False)(model, images, labels)
    assert (adv - images).abs().max() > 4 / 255
    assert _loss(model, adv, labels) > _loss(model, images, labels)
    assert all(not p.requires_grad for p in model.parameters())


def test_pgd_against_log_probability_defense_raises_its_loss():
    model = _linear_model().eval()
    defense = NoDefense().bind(model)
    images, labels = _toy_data(32, seed=6)
    adv = PGD(eps="8/255", steps=5)(defense, images, labels)
    assert F.nll_loss(defense(adv), labels) > F.nll_loss(defense(images), labels)


def test_pgd_works_inside_inference_mode():
    """Lightning evaluates under torch.inference_mode(); the attack must still get gradients."""
    model = _linear_model().eval()
    with torch.inference_mode():
        images, labels = _toy_data(8, seed=7)
        adv = PGD(eps="8/255", steps=2, random_start=False)(model, images, labels)
    assert (adv - images).abs().max() > 0
    assert (adv - images).abs().max() <= 8 / 255 + 1e-6


def test_pgd_random_start_follows_the_global_seed():
    model = _linear_model().eval()
    images, labels = _toy_data(8, seed=8)
    attack = PGD(eps="8/255", steps=1)
    torch.manual_seed(3)
    a = attack(model, images, labels)
    torch.manual_seed(3)
    b = attack(model, images, labels)
    torch.manual_seed(4)
    c = attack(model, images, labels)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


# ------------------------------------------------------------------------ names and validation


def test_pgd_default_names_and_describe():
    assert PGD().name == "PGD-10"
    assert PGD(steps=50).name == "PGD-50"
    assert PGD(steps=200, name="strong").name == "strong"
    attack = PGD(eps="8/255", step_size="2/255", steps=10)
    assert attack.describe() == {
        "eps": 8 / 255, "step_size": 2 / 255, "steps": 10, "target": "none",
    }  # fmt: skip
    assert attack.threat_model == "oblivious"
    assert attack.random_start is True
    assert isinstance(attack, Attack)


@pytest.mark.parametrize("threat_model", ["oblivious", "adaptive"])
def test_threat_model_accepted(threat_model):
    assert PGD(threat_model=threat_model).threat_model == threat_model


@pytest.mark.parametrize("threat_model", ["white-box", "", "Adaptive"])
def test_threat_model_rejected(threat_model):
    with pytest.raises(ValueError, match="threat_model"):
        PGD(threat_model=threat_model)


def test_pgd_invalid_arguments():
    with pytest.raises(ValueError, match="steps"):
        PGD(steps=0)
    with pytest.raises(ValueError, match="255"):
        PGD(eps=8)
    with pytest.raises(ValueError, match="step_size"):
        PGD(step_size="2")


def test_parse_budget_of_none_is_a_value_error():
    with pytest.raises(ValueError, match="not a number"):
        parse_budget(None)

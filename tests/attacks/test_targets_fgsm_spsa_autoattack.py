"""Tests for targeted PGD, FGSM, SPSA and AutoAttack (tiny fixed-seed models, CPU)."""

import pytest
import torch
import torch.nn.functional as F
import torchattacks
from torch import nn

from mixup_robust.attacks import FGSM, PGD, SPSA, Attack, AutoAttack
from mixup_robust.attacks.targets import random_targets, second_most_likely
from mixup_robust.defenses import NoDefense

# ------------------------------------------------------------------------------------ helpers


def _linear_model(num_classes: int = 10, seed: int = 0) -> nn.Module:
    """A fixed-seed random linear classifier of 1x8x8 images (eval mode)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes)).eval()


def _data(model: nn.Module, n: int = 32, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [0.1, 0.9] labelled with the model's own predictions (clean accuracy 1)."""
    images = 0.1 + 0.8 * torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return images, model(images).argmax(dim=1)


def _accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(images).argmax(dim=1) == labels).float().mean().item()


def _loss(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return F.cross_entropy(model(images), labels).item()


def _assert_in_ball(adv: torch.Tensor, images: torch.Tensor, eps: float) -> None:
    assert adv.shape == images.shape and not adv.requires_grad
    assert adv.min() >= 0 and adv.max() <= 1
    assert (adv - images).abs().max() <= eps + 1e-6


# --------------------------------------------------------------------------------- targets


def test_random_targets_never_the_label_and_uniform_over_the_others():
    labels = torch.arange(9000) % 10
    torch.manual_seed(0)
    targets = random_targets(labels, 10)
    assert targets.dtype == torch.int64 and targets.shape == labels.shape
    assert (targets != labels).all() and targets.min() >= 0 and targets.max() <= 9
    for label in (0, 9):  # each of the 9 other classes about 100 times out of 900
        counts = torch.bincount(targets[labels == label], minlength=10)
        assert counts[label] == 0
        others = counts[torch.arange(10) != label]
        assert others.min() >= 60 and others.max() <= 140, counts


def test_random_targets_follow_the_global_seed():
    labels = torch.randint(0, 100, (64,))
    torch.manual_seed(5)
    a = random_targets(labels, 100)
    torch.manual_seed(5)
    b = random_targets(labels, 100)
    torch.manual_seed(6)
    c = random_targets(labels, 100)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_second_most_likely_is_argsort_minus_two():
    outputs = torch.randn(50, 7, generator=torch.Generator().manual_seed(0))
    assert torch.equal(second_most_likely(outputs), outputs.argsort(dim=1)[:, -2])
    assert torch.equal(second_most_likely(outputs.log_softmax(1)), outputs.argsort(dim=1)[:, -2])


# ---------------------------------------------------------------------------- targeted PGD


@pytest.mark.parametrize("num_classes", [10, 100])
def test_targeted_pgd_random_moves_predictions_to_the_target(num_classes):
    model = _linear_model(num_classes)
    images, labels = _data(model, 64)
    attack = PGD(eps=0.4, step_size=0.05, steps=20, target="random")
    torch.manual_seed(0)
    targets = attack.target_labels(model, images, labels)
    torch.manual_seed(0)  # same draw inside the attack (torchattacks draws targets first)
    adv = attack(model, images, labels)
    _assert_in_ball(adv, images, 0.4)
    assert (targets != labels).all()
    with torch.no_grad():
        predictions = model(adv).argmax(dim=1)
    assert (predictions == targets).float().mean() >= 0.8  # chance: 1 / (num_classes - 1)


def test_targeted_pgd_second_most_likely_reaches_it():
    model = _linear_model(10)
    images, labels = _data(model, 64)
    with torch.no_grad():
        expected = model(images).argsort(dim=1)[:, -2]
    attack = PGD(eps=0.25, step_size=0.05, steps=10, target="second_most_likely")
    assert torch.equal(attack.target_labels(model, images, labels), expected)
    adv = attack(model, images, labels)
    _assert_in_ball(adv, images, 0.25)
    with torch.no_grad():
        assert (model(adv).argmax(dim=1) == expected).float().mean() >= 0.8


def test_targeted_pgd_on_log_probability_defense():
    model = _linear_model(10)
    defense = NoDefense().bind(model)
    images, labels = _data(model, 32)
    attack = PGD(eps=0.1, step_size=0.02, steps=10, target="second_most_likely")
    targets = attack.target_labels(defense, images, labels)
    adv = attack(defense, images, labels)
    assert F.nll_loss(defense(adv), targets) < F.nll_loss(defense(images), targets)


def test_targeted_pgd_one_step_descends_the_target_cross_entropy():
    model = _linear_model(10)
    images, labels = _data(model, 8)
    attack = PGD(eps=0.05, step_size=0.02, steps=1, random_start=False, target="random")
    torch.manual_seed(1)
    targets = attack.target_labels(model, images, labels)
    x = images.clone().requires_grad_(True)
    F.cross_entropy(model(x), targets).backward()
    expected = (images - 0.02 * x.grad.sign()).clamp(0, 1)
    torch.manual_seed(1)
    assert torch.allclose(attack(model, images, labels), expected, atol=1e-6)


def test_pgd_names_and_describe_with_targets():
    assert PGD().name == "PGD-10"
    assert PGD(target="random").name == "PGD-10 (targeted, random)"
    assert PGD(steps=50, target="second_most_likely").name == "PGD-50 (targeted, second)"
    assert PGD().describe()["target"] == "none"
    assert PGD(target="random").describe() == {
        "eps": 8 / 255, "step_size": 2 / 255, "steps": 10, "target": "random",
    }  # fmt: skip
    with pytest.raises(ValueError, match="target"):
        PGD(target="least_likely")
    with pytest.raises(ValueError, match="targeted"):
        PGD().target_labels(_linear_model(), *_data(_linear_model(), 2))


# ------------------------------------------------------------------------------------ FGSM


def test_fgsm_is_one_signed_gradient_step_clipped():
    model = _linear_model(10)
    images, labels = _data(model, 16)
    images[:4] = 0.0  # borders: the step must be clipped to [0, 1]
    images[4:8] = 1.0
    x = images.clone().requires_grad_(True)
    F.cross_entropy(model(x), labels).backward()
    expected = (images + 0.05 * x.grad.sign()).clamp(0, 1)
    adv = FGSM(eps=0.05)(model, images, labels)
    assert torch.allclose(adv, expected, atol=1e-6)
    _assert_in_ball(adv, images, 0.05)
    assert _loss(model, adv, labels) > _loss(model, images, labels)


def test_fgsm_name_and_describe():
    assert FGSM().name == "FGSM"
    assert FGSM(name="fast").name == "fast"
    assert FGSM(eps="4/255").describe() == {"eps": 4 / 255}
    with pytest.raises(ValueError, match="255"):
        FGSM(eps=8)


# ------------------------------------------------------------------------------------ SPSA


@pytest.mark.parametrize("log_probabilities", [False, True])
def test_spsa_stays_in_the_ball_and_raises_the_loss(log_probabilities):
    model = _linear_model(10)
    images, labels = _data(model, 16)
    attacked = NoDefense().bind(model) if log_probabilities else model
    attack = SPSA(eps="8/255", nb_iter=5, nb_sample=32, max_batch_size=16)
    torch.manual_seed(0)
    adv = attack(attacked, images, labels)
    _assert_in_ball(adv, images, 8 / 255)
    assert (adv - images).abs().max() > 4 / 255
    assert _loss(model, adv, labels) > _loss(model, images, labels) + 0.05


def test_spsa_follows_the_global_seed():
    model = _linear_model(10)
    images, labels = _data(model, 4)
    attack = SPSA(nb_iter=2, nb_sample=8, max_batch_size=8)
    results = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        results.append(attack(model, images, labels))
    assert torch.equal(results[0], results[1]) and not torch.equal(results[0], results[2])


def test_spsa_name_describe_and_validation():
    attack = SPSA()
    assert attack.name == "SPSA-20"
    assert attack.describe() == {
        "eps": 8 / 255, "delta": 0.01, "lr": 0.01, "nb_iter": 20, "nb_sample": 128,
    }  # fmt: skip
    for bad in ({"nb_iter": 0}, {"nb_sample": 0}, {"max_batch_size": 0}, {"delta": 0.0}):
        with pytest.raises(ValueError):
            SPSA(**bad)


# ------------------------------------------------------------------------------ AutoAttack


@pytest.mark.parametrize("num_classes", [10, 100])
def test_autoattack_respects_the_ball_and_lowers_accuracy(num_classes):
    model = _linear_model(num_classes)
    images, labels = _data(model, 8)
    torch.manual_seed(0)
    adv = AutoAttack(eps=0.1, steps=10)(model, images, labels)
    _assert_in_ball(adv, images, 0.1)
    assert _accuracy(model, adv, labels) <= 0.5 < _accuracy(model, images, labels)


def test_autoattack_with_few_classes_caps_the_target_classes():
    """torchattacks' n_classes=10 default crashes APGD-T with fewer classes; capped here."""
    model = _linear_model(5)
    images, labels = _data(model, 8)
    adv = AutoAttack(eps=0.1, steps=5)(model, images, labels)
    _assert_in_ball(adv, images, 0.1)
    with pytest.raises(ValueError, match="at least 4 classes"):
        AutoAttack()(_linear_model(3), *_data(_linear_model(3), 4))


@pytest.mark.parametrize(("num_classes", "n_classes"), [(5, 5), (10, 10), (100, 10)])
def test_autoattack_configures_torchattacks_like_the_reference(monkeypatch, num_classes, n_classes):
    built = []
    original = torchattacks.AutoAttack

    def spy(*args, **kwargs):
        built.append(original(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(torchattacks, "AutoAttack", spy)
    model = _linear_model(num_classes)
    images, labels = _data(model, 4)
    AutoAttack(eps=0.2, steps=7)(model, images, labels)
    (attack,) = built
    assert attack.n_classes == n_classes  # 9 target classes (or all the others) as reference
    steps = {type(a).__name__: a.steps for a in attack._autoattack.attacks if hasattr(a, "steps")}
    assert steps == {"APGD": 7, "APGDT": 7, "FAB": 7}


def test_autoattack_seed_comes_from_the_global_rng_which_it_leaves_alone():
    model = _linear_model(10)
    images, labels = _data(model, 4)
    attack = AutoAttack(eps="4/255", version="rand", steps=2)
    runs = []
    for seed in (3, 3):
        torch.manual_seed(seed)
        runs.append((attack(model, images, labels), torch.rand(3)))
    torch.manual_seed(3)
    torch.randint(0, 2**31 - 1, ())  # the one draw the attack makes (its seed)
    assert torch.equal(runs[0][0], runs[1][0])
    assert torch.equal(runs[0][1], torch.rand(3))


def test_autoattack_names_describe_and_validation():
    assert AutoAttack().name == "AutoAttack"
    assert AutoAttack(version="rand").name == "AutoAttack (rand)"
    assert AutoAttack(version="plus", norm="L2", eps=0.5).name == "AutoAttack (plus, L2)"
    assert AutoAttack().describe() == {
        "eps": 8 / 255, "version": "standard", "norm": "Linf", "steps": 100,
        "n_target_classes": 9,
    }  # fmt: skip
    for bad in ({"version": "fast"}, {"norm": "L1"}, {"steps": 0}, {"n_target_classes": 0}):
        with pytest.raises(ValueError):
            AutoAttack(**bad)


# -------------------------------------------------------------------------- modes restored


def _model_with_modes() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2),
        nn.Linear(16, 10),
    )  # fmt: skip


@pytest.mark.parametrize(
    "attack",
    [
        PGD(steps=2, target="random"),
        PGD(steps=2, target="second_most_likely"),
        FGSM(),
        SPSA(nb_iter=2, nb_sample=8, max_batch_size=8),
        AutoAttack(eps=0.3, steps=2, version="rand"),
        AutoAttack(eps=0.3, steps=2),
        AutoAttack(eps=0.3, steps=2, version="plus"),
        AutoAttack(eps=1.0, steps=2, norm="L2"),
    ],
    ids=lambda attack: attack.name,
)
def test_attacks_restore_modes_and_leave_the_model_untouched(attack: Attack):
    model = _model_with_modes().train()
    model[2].eval()  # a frozen BatchNorm inside a model in train mode
    modes = {name: m.training for name, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    images = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(8)
    adv = attack(model, images, labels)
    assert {name: m.training for name, m in model.named_modules()} == modes
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert all(p.grad is None for p in model.parameters())
    _assert_in_ball(adv, images, attack.eps)

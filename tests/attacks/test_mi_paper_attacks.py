"""The MI paper's attacks as its official code runs them, beside the project's defaults."""

import pytest
import torch
import torch.nn.functional as F

from mixup_robust.attacks import MixupInferenceAdaptivePGD
from mixup_robust.defenses import ClassPool, MixupInference
from mixup_robust.nets import SmallCNN

EPS, STEP = 32 / 255, 8 / 255


@pytest.fixture()
def mi_ol():
    torch.manual_seed(0)
    classifier = SmallCNN(1, 4, width=4).eval()
    images = (torch.arange(4 * 6 * 64) * 37 % 256).to(torch.uint8).view(24, 1, 8, 8)
    pool = ClassPool(images, torch.arange(24) % 4, 4)
    return MixupInference("other", mixup_ratio=0.6, n_executions=6).bind(classifier, pool, seed=3)


def batch(size: int = 4):
    generator = torch.Generator().manual_seed(1)
    return torch.rand(size, 1, 8, 8, generator=generator), torch.arange(size) % 4


def official_loop(defense, images, partners, steps):
    """One input and one copy at a time: the loss at mix + d_k, each copy's own label."""
    ratio, classifier = defense.mixup_ratio, defense.classifier
    results = []
    for row in range(len(images)):
        copies = [
            ratio * images[row] + (1 - ratio) * defense.pool.fetch(partners[row, k : k + 1])[0]
            for k in range(partners.shape[1])
        ]
        labels = [classifier(copy[None]).argmax(dim=1) for copy in copies]
        deltas = [torch.zeros_like(copy) for copy in copies]
        for _ in range(steps):
            gradients = []
            for copy, label, delta in zip(copies, labels, deltas, strict=True):
                delta = delta.clone().requires_grad_(True)
                loss = F.cross_entropy(classifier((copy + delta)[None]), label)
                gradients.append(torch.autograd.grad(loss, delta)[0])
            sign = torch.stack(gradients).mean(dim=0).sign()
            for k, copy in enumerate(copies):
                delta = (deltas[k] + STEP * sign).clamp(-EPS, EPS)
                deltas[k] = (copy + delta).clamp(0, 1) - copy
        results.append(images[row] + torch.stack(deltas).mean(dim=0))
    return torch.stack(results)


def test_paper_variant_equals_the_official_procedure(mi_ol):
    images, labels = batch()
    attack = MixupInferenceAdaptivePGD(
        eps=EPS, step_size=STEP, steps=4, n_samples=5, random_start=False, variant="paper"
    )
    adversarial = attack.against_defense(mi_ol, images, labels, torch.arange(4))
    partners = attack._fixed_partners(mi_ol, images, torch.arange(4))
    expected = official_loop(mi_ol, images, partners, steps=4)
    close = torch.isclose(adversarial, expected, atol=1e-5)
    assert close.float().mean() > 0.999  # a sign of a near-zero gradient may flip by rounding
    project = MixupInferenceAdaptivePGD(
        eps=EPS, step_size=STEP, steps=4, n_samples=5, random_start=False
    ).against_defense(mi_ol, images, labels, torch.arange(4))
    assert not torch.allclose(project, adversarial, atol=1e-3)


def test_paper_variant_is_unclipped_and_each_copy_has_its_own_start(mi_ol):
    bright = torch.ones(3, 1, 8, 8)
    labels = torch.arange(3)
    attack = MixupInferenceAdaptivePGD(
        eps=EPS, step_size=STEP, steps=2, n_samples=5, variant="paper"
    )
    torch.manual_seed(0)
    adversarial = attack.against_defense(mi_ol, bright, labels, torch.arange(3))
    assert adversarial.max() > 1  # x + mean(d_k), not clipped (the official code)
    assert (adversarial - bright).abs().max() <= EPS + 1e-6
    # With a start shared by all copies, every copy's d_k would move identically where no
    # bound binds: the mean would then be a multiple of the step; per-copy starts break that.
    steps = (adversarial - bright) / STEP
    assert not torch.allclose(steps, steps.round(), atol=1e-3)
    project = MixupInferenceAdaptivePGD(eps=EPS, step_size=STEP, steps=2, n_samples=5)
    assert project.against_defense(mi_ol, bright, labels, torch.arange(3)).max() <= 1


def test_variant_is_named_and_validated():
    attack = MixupInferenceAdaptivePGD(steps=10, n_samples=5, variant="paper")
    assert attack.name == "MI-adaptive PGD-10 (N_A=5, paper variant)"
    assert attack.describe()["variant"] == "paper"
    assert MixupInferenceAdaptivePGD().describe()["variant"] == "project"
    with pytest.raises(ValueError, match="variant"):
        MixupInferenceAdaptivePGD(variant="official")
    with pytest.raises(ValueError, match="shared"):
        MixupInferenceAdaptivePGD(variant="paper", perturbation="shared")


def test_pgd_can_move_away_from_the_prediction_as_the_official_code():
    from mixup_robust.attacks import PGD

    torch.manual_seed(0)
    model = SmallCNN(1, 4, width=4).eval()
    images, labels = batch(16)
    predicted = model(images).argmax(dim=1)
    assert not torch.equal(predicted, labels)
    options = {"eps": EPS, "step_size": STEP, "steps": 4, "random_start": False}
    official = PGD(labels="predicted", **options)(model, images, labels)
    assert torch.equal(official, PGD(**options)(model, images, predicted))
    assert not torch.equal(official, PGD(**options)(model, images, labels))
    assert PGD(labels="predicted").describe()["labels"] == "predicted"
    with pytest.raises(ValueError, match="untargeted"):
        PGD(labels="predicted", target="random")

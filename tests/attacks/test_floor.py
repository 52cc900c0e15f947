"""The pieces every PGD loop shares (attacks/) and the defense contracts attacks check."""

import pytest
import torch
from torch import nn

from mixup_robust.attacks import (
    EOTPGD,
    PGD,
    FreshDraws,
    InnerPGD,
    MixupInferenceAdaptivePGD,
    PartnerMixingDefense,
    PixelMixingDefense,
    RandomizedDefense,
    preserved_modes,
    project_bounds,
    project_linf,
    project_offset,
    signed_step,
)
from mixup_robust.defenses import GaussianNoise, MixupInference, VarMixupInference
from mixup_robust.nets import SmallCNN


def test_preserved_modes_restores_each_submodule_even_after_an_error():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout()).train()
    model[1].eval()  # frozen by the user: model.train() would unfreeze it
    before = [m.training for m in model.modules()]
    with pytest.raises(RuntimeError, match="inside"):
        with preserved_modes(model, eval_inside=True):
            assert not any(m.training for m in model.modules())
            raise RuntimeError("inside")
    assert [m.training for m in model.modules()] == before
    with preserved_modes(model):
        model.eval()
    assert [m.training for m in model.modules()] == before


def test_signed_step_moves_every_pixel_by_the_step_and_detaches():
    iterate = torch.full((2, 3), 0.5, requires_grad=True)
    gradient = torch.tensor([[1.0, -2.0, 0.0], [-0.1, 3.0, 0.0]])
    moved = signed_step(iterate, gradient, 0.25)
    assert torch.equal(moved, torch.tensor([[0.75, 0.25, 0.5], [0.25, 0.75, 0.5]]))
    assert not moved.requires_grad


def test_projections_keep_the_ball_and_the_pixel_range_and_agree_up_to_rounding():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(4, 1, 8, 8, generator=generator)
    candidate = images + 0.2 * torch.randn(images.shape, generator=generator)
    for projected in (
        project_linf(candidate, images, 0.05),
        project_bounds(candidate, images, 0.05),
        project_offset(images, candidate - images, 0.05),
    ):
        assert (projected - images).abs().max() <= 0.05 + 1e-6
        assert projected.min() >= 0 and projected.max() <= 1
    by_offset, by_bounds = (
        project_linf(candidate, images, 0.05),
        project_bounds(candidate, images, 0.05),
    )
    assert torch.allclose(by_offset, by_bounds, atol=1e-7)


def test_the_two_projections_round_differently_which_is_why_both_are_kept():
    """A value far below its clean pixel: x + (a - x) loses the low bits of a."""
    clean, candidate = torch.tensor([0.01]), torch.tensor([1.2345e-8])
    assert torch.equal(project_bounds(candidate, clean, 8 / 255), candidate)
    assert not torch.equal(project_linf(candidate, clean, 8 / 255), candidate)


def test_ascent_step_moves_each_iterate_by_its_own_step_and_projection():
    weight = nn.Parameter(torch.tensor([1.0, -1.0]))
    first, second = torch.tensor([0.5, 0.5]), torch.tensor([0.75, 0.0])

    def objective(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a * weight).sum() + (b * weight).sum()

    pgd = InnerPGD(eps=0.1, step_size=0.25)
    moved = pgd.ascent_step(
        objective, [first, second], [lambda a: a, lambda b: b.clamp(0, 1)], [0.25, 0.5]
    )
    assert torch.equal(moved[0], torch.tensor([0.75, 0.25]))
    assert torch.equal(moved[1], torch.tensor([1.0, 0.0]))  # projected onto [0, 1]
    assert weight.grad is None and not any(m.requires_grad for m in moved)
    assert torch.equal(first, torch.tensor([0.5, 0.5]))  # the inputs are not changed


def test_ascend_takes_steps_with_the_default_step_size_and_none_for_zero_steps():
    objective = lambda x: x.sum()  # noqa: E731
    start = torch.zeros(3, requires_grad=True)
    (three,) = InnerPGD(eps=1, step_size=0.1, steps=3).ascend(objective, [start], [lambda x: x])
    assert torch.allclose(three, torch.full((3,), 0.3))
    (none,) = InnerPGD(eps=1, step_size=0.1, steps=0).ascend(objective, [start], [lambda x: x])
    assert torch.equal(none, start) and not none.requires_grad


def test_defenses_satisfy_the_protocols_the_attacks_check():
    mi = MixupInference("other", mixup_ratio=0.5)
    varmi = VarMixupInference("unused.ckpt")
    noise = GaussianNoise()
    assert isinstance(mi, PixelMixingDefense) and mi.mixes_pixels
    # VarMI has every member of a pixel-mixing defense, but mixes latent codes.
    assert isinstance(varmi, PartnerMixingDefense) and not varmi.mixes_pixels
    assert isinstance(noise, RandomizedDefense) and not isinstance(noise, PartnerMixingDefense)
    assert not isinstance(SmallCNN(1, 4, width=4), RandomizedDefense)


@pytest.mark.parametrize(
    "attack", [EOTPGD(steps=1, n_samples=2), MixupInferenceAdaptivePGD(steps=1), PGD(steps=1)]
)
def test_an_attack_refuses_a_model_that_is_not_a_randomized_defense(attack):
    images, labels = torch.rand(2, 1, 8, 8), torch.tensor([0, 1])
    with pytest.raises(TypeError, match=r"needs a RandomizedDefense.*lacks execution_log_probs"):
        attack.against_defense(SmallCNN(1, 4, width=4), images, labels, torch.arange(2))
    with pytest.raises(TypeError, match="FreshDraws needs a RandomizedDefense"):
        FreshDraws(SmallCNN(1, 4, width=4))

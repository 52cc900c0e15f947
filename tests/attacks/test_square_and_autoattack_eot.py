"""Square through torchattacks (seeded by the caller, RNG restored) and AutoAttack's eot_iter."""

import pytest
import torch
from torch import nn

from mixup_robust.attacks import AutoAttack, Square


class CountingNet(nn.Module):
    """A small linear classifier on 1x8x8 images that counts its forward calls."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(64, 4)
        self.calls = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.linear(images.flatten(1) * 4 - 2)


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        labels = CountingNet()(images).argmax(1)
    return images, labels


def test_square_stays_in_the_ball_fools_the_model_and_restores_the_global_rng():
    model, (images, labels) = CountingNet().eval(), batch()
    attack = Square(eps="32/255", n_queries=200)
    torch.manual_seed(5)
    adversarial = attack(model, images, labels)
    after = torch.rand(1)
    torch.manual_seed(5)
    torch.randint(0, 2**31 - 1, ())  # the one draw Square takes (its seed)
    assert torch.equal(torch.rand(1), after)
    assert (adversarial - images).abs().max() <= 32 / 255 + 1e-6
    assert 0 <= adversarial.min() and adversarial.max() <= 1
    with torch.no_grad():
        assert (model(adversarial).argmax(1) != labels).sum() >= 4
    torch.manual_seed(5)
    assert torch.equal(attack(model, images, labels), adversarial)  # seeded by the caller
    assert not Square.uses_gradients and attack.describe()["n_queries"] == 200


def test_autoattack_rand_eot_iter_sets_the_draws_per_step():
    images, labels = batch()
    calls = {}
    for eot_iter in (1, 3):
        model = CountingNet().eval()
        AutoAttack(eps="16/255", version="rand", steps=4, eot_iter=eot_iter)(model, images, labels)
        calls[eot_iter] = model.calls
    assert calls[3] > 2 * calls[1]
    assert AutoAttack(version="rand", eot_iter=3).describe()["eot_iter"] == 3
    with pytest.raises(ValueError, match="version 'rand' only"):
        AutoAttack(version="standard", eot_iter=3)

"""The one-cycle schedule and the nets of the fast and CPU-scale recipes."""

import itertools
from functools import partial

import pytest
import torch

from mixup_robust.nets import FastCNN, PlainCNN
from mixup_robust.training import ClassifierSGD, Mixup, OneCycleSchedule


def tiny(**kwargs) -> Mixup:
    return Mixup(PlainCNN, num_classes=4, image_shape=(1, 8, 8), **kwargs)


def one_cycle(warmup_fraction: float = 0.2, **optimizer) -> dict:
    """The per-step one-cycle schedule and the default SGD with `optimizer`'s changes."""
    return {
        "optimizer": partial(ClassifierSGD, **optimizer),
        "scheduler": OneCycleSchedule(warmup_fraction),
        "scheduler_interval": "step",
    }


def one_cycle_learning_rates(module: Mixup, total_steps: int) -> tuple[list[float], dict]:
    """The learning rate before each of `total_steps` optimizer steps, and the config."""
    module.trainer = type("T", (), {"estimated_stepping_batches": total_steps})()
    configured = module.configure_optimizers()
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(total_steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates, configured


def test_one_cycle_warms_up_linearly_then_decays_every_step():
    rates, configured = one_cycle_learning_rates(tiny(**one_cycle(0.25, lr=0.4, momentum=0.85)), 20)
    assert configured["lr_scheduler"]["interval"] == "step"
    peak = rates.index(max(rates))
    assert rates[peak] == pytest.approx(0.4) and peak == 5  # 25 % of 20 steps
    assert rates[0] == pytest.approx(0.4 / 25)
    assert all(a < b for a, b in itertools.pairwise(rates[: peak + 1]))
    assert all(a > b for a, b in itertools.pairwise(rates[peak:]))
    assert rates[-1] == pytest.approx(0.4 / 15)  # one step before zero: 15 decay steps
    # Linear: equal steps up, equal steps down.
    assert rates[2] - rates[1] == pytest.approx(rates[1] - rates[0])
    assert rates[10] - rates[11] == pytest.approx(rates[11] - rates[12])
    # Momentum is the configured one, not cycled.
    assert configured["optimizer"].param_groups[0]["momentum"] == 0.85


def test_one_cycle_works_for_very_short_runs():
    rates, _ = one_cycle_learning_rates(tiny(**one_cycle(lr=1.0)), 2)
    assert rates == pytest.approx([1 / 25, 1.0])


def test_one_cycle_refuses_an_unbounded_run_and_a_bad_warmup():
    module = tiny(**one_cycle())
    module.trainer = type("T", (), {"estimated_stepping_batches": float("inf")})()
    with pytest.raises(ValueError, match=r"max_epochs or trainer.max_steps"):
        module.configure_optimizers()
    with pytest.raises(ValueError, match="warmup_fraction"):
        tiny(**one_cycle(warmup_fraction=1.0))


@pytest.mark.parametrize("net", [FastCNN, PlainCNN])
def test_recipe_nets_give_logits_and_learn(net):
    torch.manual_seed(0)
    model = net(3, 10)
    images, labels = torch.rand(16, 3, 32, 32), torch.arange(16) % 10
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(30):
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert model(images).shape == (16, 10)
    assert losses[-1] < 0.5 * losses[0]  # fits a fixed batch

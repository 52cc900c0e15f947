"""Every shipped training config trains with the optimizer and schedule of its former flags.

Before issue 13 the configs set `optimizer` ('sgd'/'adam'), `lr`, `momentum`, `nesterov`,
`weight_decay`, `schedule` ('multistep'/'cosine'/'onecycle'/'constant'), `milestones`,
`gamma` and `warmup_fraction`; the MMD-VAE set `lr` (Adam). `FORMER` keeps those flags of
every shipped config. Each config is resolved by the CLI's parser; its optimizer, scheduler
and interval drive a tiny module of the same family (every method shares
`ScheduledModule.configure_optimizers`) through the whole run, stepped as Lightning steps
it, and every step's learning rate and weights are compared with the flags' meaning
written out by hand below (torch's SGD and Adam updates, the four schedules).
"""

import math

import pytest
import torch
import yaml
from lightning.pytorch.cli import instantiate_module

from mixup_robust.training import ERM, MMDVAE
from tests.helpers.cli import REPO
from tests.helpers.configs import BLOCK_FOLDERS, CIFAR100
from tests.helpers.configs import resolved as resolved_name

DEFAULTS = {
    "optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "nesterov": False,
    "schedule": "multistep", "milestones": (100, 150), "gamma": 0.1, "warmup_fraction": 0.2,
}  # fmt: skip
STEPS_PER_EPOCH = 2


def former(**flags) -> dict:
    """A classifier config's former flags, the unset ones at their former defaults."""
    return {**DEFAULTS, **flags}


def vae(lr: float) -> dict:
    """The MMD-VAE's former optimizer: Adam with `lr`, no weight decay, no schedule."""
    return former(optimizer="adam", lr=lr, weight_decay=0.0, schedule="constant")


MI = former(lr=0.01, weight_decay=0.0)  # the MI paper's classifiers (official code)
MI_IAT = former(lr=0.1, weight_decay=0.0)
ADAM = former(optimizer="adam", lr=1e-3, weight_decay=0.0, schedule="constant")
QUICK = former(lr=0.05, weight_decay=5e-4, schedule="cosine")
CPU = former(lr=0.1, nesterov=True, schedule="onecycle")
FAST = former(lr=0.2, nesterov=True, schedule="onecycle")
FORMER = {
    "cifar10/adv_vae.yaml": vae(1e-3), "cifar10/vae.yaml": vae(1e-3),
    "cifar10/aomixup.yaml": MI, "cifar10/at.yaml": MI, "cifar10/at_madry.yaml": MI,
    "cifar10/erm.yaml": MI, "cifar10/iat.yaml": MI_IAT, "cifar10/mixup.yaml": MI,
    "cifar10/manifold_mixup.yaml": ADAM, "cifar10/varerm.yaml": ADAM,
    "cifar10/varmixup.yaml": ADAM, "cifar10/varmixup_tiny_vae.yaml": ADAM,
    "cifar10/trades.yaml": former(lr=0.1, weight_decay=2e-4, milestones=(75,)),
    "cifar100/aomixup.yaml": MI, "cifar100/at.yaml": MI, "cifar100/at_madry.yaml": MI,
    "cifar100/erm.yaml": MI, "cifar100/iat.yaml": MI_IAT, "cifar100/mixup.yaml": MI,
    "cifar10_cpu/erm.yaml": CPU, "cifar10_cpu/iat.yaml": CPU, "cifar10_cpu/mixup.yaml": CPU,
    "cifar10_fast/erm.yaml": FAST, "cifar10_fast/iat.yaml": FAST,
    "cifar10_fast/mixup.yaml": FAST,
    "quickstart/vae.yaml": vae(1e-3),
    **{f"quickstart/{name}.yaml": QUICK for name in (
        "aomixup", "at", "erm", "iat", "manifold_mixup", "mixup", "trades", "varmixup")},
}  # fmt: skip


def shipped_training_configs() -> list[str]:
    """Every config under configs/ whose model is a training method, and the CIFAR-100 stacks."""
    found = list(CIFAR100)
    for path in sorted((REPO / "configs").rglob("*.yaml")):
        if path.parent.name in BLOCK_FOLDERS:
            continue
        model = (yaml.safe_load(path.read_text()) or {}).get("model") or {}
        if str(model.get("class_path", "")).startswith("mixup_robust.training."):
            found.append(str(path.relative_to(REPO / "configs")))
    return sorted(found)


def resolved(config: str) -> dict:
    """The config as the CLI's parser resolves it (`fit --print_config`)."""
    return resolved_name("fit", config)


def tiny_module(model: dict):
    """A tiny module of the config's family, with the config's optimizer and schedule."""
    keys = ("optimizer", "scheduler", "scheduler_interval")
    given = {key: model["init_args"][key] for key in keys if key in model["init_args"]}
    torch.manual_seed(0)
    if model["class_path"].endswith("MMDVAE"):
        module = instantiate_module(
            MMDVAE, {"latent_dim": 2, "width": 2, "image_shape": [1, 8, 8], **given}
        )
    else:
        net = {"class_path": "mixup_robust.nets.SmallCNN", "init_args": {"width": 2}}
        module = instantiate_module(
            ERM, {"net": net, "num_classes": 3, "image_shape": [1, 8, 8], **given}
        )
    return module.double()  # float64: the hand-written updates agree to rounding


def former_lr(flags: dict, epoch: int, step: int, total_steps: int, epochs: int) -> float:
    """The learning rate of optimizer step `step` (in epoch `epoch`) under the former flags."""
    lr, schedule = flags["lr"], flags["schedule"]
    if schedule == "constant":
        return lr
    if schedule == "multistep":  # per epoch
        return lr * flags["gamma"] ** sum(epoch >= milestone for milestone in flags["milestones"])
    if schedule == "cosine":  # per epoch, to zero over max_epochs
        return lr * (1 + math.cos(math.pi * epoch / max(1, epochs))) / 2
    # onecycle, per optimizer step: linear from lr / 25 to lr, then linear to zero
    warmup = min(max(1, round(flags["warmup_fraction"] * total_steps)), total_steps - 1)
    if step < warmup:
        return lr * (1 / 25 + (24 / 25) * step / warmup)
    return lr * (total_steps - step) / (total_steps - warmup)


def former_update(flags: dict, weights: list, state: list, gradients: list, lr: float) -> None:
    """One step of torch's SGD (momentum, dampening 0, L2 decay) or Adam, in place."""
    decay, momentum = flags["weight_decay"], flags["momentum"]
    for index, (weight, gradient) in enumerate(zip(weights, gradients, strict=True)):
        direction = gradient + decay * weight
        if flags["optimizer"] == "adam":
            count, first, second = state[index] or (0, 0.0, 0.0)
            count, first = count + 1, 0.9 * first + 0.1 * direction
            second = 0.999 * second + 0.001 * direction**2
            state[index] = (count, first, second)
            scale = (second / (1 - 0.999**count)).sqrt() + 1e-8
            weight -= lr * first / (1 - 0.9**count) / scale
            continue
        buffer = direction if state[index] is None else momentum * state[index] + direction
        state[index] = buffer
        weight -= lr * (direction + momentum * buffer if flags["nesterov"] else buffer)


def test_every_shipped_training_config_has_its_former_flags():
    assert sorted(FORMER) == shipped_training_configs(), (
        "A training config was added or removed: give FORMER its expected optimizer and "
        "schedule (the flags it would have had), or remove it."
    )


@pytest.mark.parametrize("config", sorted(FORMER))
def test_config_steps_like_its_former_flags(config):
    flags, settings = FORMER[config], resolved(config)
    epochs = settings["trainer"]["max_epochs"]
    total = epochs * STEPS_PER_EPOCH
    module = tiny_module(settings["model"])
    module.trainer = type("T", (), {"max_epochs": epochs, "estimated_stepping_batches": total})()
    configured = module.configure_optimizers()
    optimizer = configured["optimizer"] if isinstance(configured, dict) else configured
    scheduler = configured["lr_scheduler"] if isinstance(configured, dict) else None
    expected_class = torch.optim.Adam if flags["optimizer"] == "adam" else torch.optim.SGD
    assert type(optimizer) is expected_class
    if flags["schedule"] == "constant":
        assert scheduler is None
    else:
        expected_interval = "step" if flags["schedule"] == "onecycle" else "epoch"
        assert scheduler["interval"] == expected_interval
    weights = [p for group in optimizer.param_groups for p in group["params"]]
    reference = [p.detach().clone() for p in weights]
    state: list = [None] * len(weights)
    lrs = set()
    for step in range(total):
        epoch = step // STEPS_PER_EPOCH
        lr = former_lr(flags, epoch, step, total, epochs)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(lr, rel=1e-9, abs=1e-15), step
        lrs.add(round(lr, 12))
        gradients = [torch.sin(3 * p.detach() + step) for p in weights]
        for weight, gradient in zip(weights, gradients, strict=True):
            weight.grad = gradient.clone()
        optimizer.step()
        former_update(flags, reference, state, gradients, lr)
        if step in (2, total // 2, total - 1):
            for weight, expected in zip(weights, reference, strict=True):
                torch.testing.assert_close(weight.detach(), expected, rtol=1e-9, atol=1e-12)
        last_of_epoch = (step + 1) % STEPS_PER_EPOCH == 0
        if scheduler and (scheduler["interval"] == "step" or last_of_epoch):
            scheduler["scheduler"].step()
    # The run crossed at least one schedule boundary (the rate changed) unless constant.
    assert len(lrs) > 1 or flags["schedule"] == "constant"


def test_the_reference_fails_on_a_changed_flag():
    """The comparison is sharp: Nesterov or another weight decay changes the weights."""
    gradients = [torch.tensor([0.5, -1.0], dtype=torch.float64)]
    results = []
    for flags in (CPU, {**CPU, "nesterov": False}, {**CPU, "weight_decay": 0.0}):
        weights, state = [torch.tensor([1.0, 2.0], dtype=torch.float64)], [None]
        for _ in range(2):
            former_update(flags, weights, state, gradients, 0.1)
        results.append(weights[0])
    assert not torch.allclose(results[0], results[1])
    assert not torch.allclose(results[0], results[2])
    by_hand = torch.tensor([0.8548575025, 2.289705005], dtype=torch.float64)  # SGD, worked by hand
    torch.testing.assert_close(results[1], by_hand, rtol=0, atol=1e-12)

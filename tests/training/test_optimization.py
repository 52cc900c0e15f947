"""Injected optimizers and schedules: any torch optimizer or scheduler from YAML, the project's
run-length schedules, their interval and the resume guard (checkpoints of the former flags:
tests/checkpoints/test_load_classifier.py)."""

import json
from functools import partial

import pytest
import torch
from lightning.pytorch.cli import ReduceLROnPlateau

from mixup_robust.checkpoints import load_classifier
from mixup_robust.nets import SmallCNN
from mixup_robust.run import ResumableOptimization
from mixup_robust.training import ERM, MMDVAE, ClassifierSGD, CosineSchedule, OneCycleSchedule
from mixup_robust.training.optimization import check_schedule_length
from tests.helpers.cli import REPO, fit_digits, run_cli


def tiny(**kwargs) -> ERM:
    return ERM(SmallCNN, num_classes=4, image_shape=(1, 8, 8), **kwargs)


def attach(module: ERM, max_epochs: int, steps: int) -> ERM:
    module.trainer = type(
        "T", (), {"max_epochs": max_epochs, "estimated_stepping_batches": steps}
    )()
    return module


def rates(configured: dict, count: int) -> list[float]:
    """The learning rate before each of `count` scheduler steps."""
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    seen = []
    for _ in range(count):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


def test_adamw_and_torch_one_cycle_need_no_code(tmp_path):
    scheduler = {"class_path": "torch.optim.lr_scheduler.OneCycleLR",
                 "init_args": {"max_lr": 0.01, "total_steps": 8}}  # fmt: skip
    checkpoint = fit_digits(
        tmp_path, "mixup", 1, "--trainer.max_steps", "3",
        "--model.init_args.optimizer", "torch.optim.AdamW",
        "--model.init_args.optimizer.init_args.lr", "0.01",
        "--model.init_args.scheduler", json.dumps(scheduler),
        "--model.init_args.scheduler_interval", "step",
    )  # fmt: skip
    state = torch.load(checkpoint, weights_only=True)
    assert state["hyper_parameters"]["optimizer"]["class_path"] == "torch.optim.AdamW"
    assert "exp_avg" in next(iter(state["optimizer_states"][0]["state"].values()))
    assert state["lr_schedulers"][0]["last_epoch"] == 3  # stepped per optimizer step
    reference = torch.optim.lr_scheduler.OneCycleLR(
        torch.optim.AdamW([torch.zeros(1)], lr=0.01), max_lr=0.01, total_steps=8
    )
    for _ in range(3):
        reference.optimizer.step()
        reference.step()
    lr = state["optimizer_states"][0]["param_groups"][0]["lr"]
    assert lr == pytest.approx(reference.get_last_lr()[0])
    classifier, _ = load_classifier(str(checkpoint))  # the checkpoint is evaluable
    assert classifier(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_a_run_length_schedule_spans_the_steps_or_the_epochs():
    per_step = tiny(optimizer=partial(ClassifierSGD, lr=0.2), scheduler=CosineSchedule(),
                    scheduler_interval="step")  # fmt: skip
    configured = attach(per_step, max_epochs=2, steps=10).configure_optimizers()
    assert configured["lr_scheduler"]["interval"] == "step"
    seen = rates(configured, 11)
    assert seen[5] == pytest.approx(0.1) and seen[10] == pytest.approx(0.0, abs=1e-12)
    per_epoch = tiny(optimizer=partial(ClassifierSGD, lr=0.2), scheduler=CosineSchedule())
    configured = attach(per_epoch, max_epochs=4, steps=10).configure_optimizers()
    assert configured["lr_scheduler"]["interval"] == "epoch"
    assert rates(configured, 3)[2] == pytest.approx(0.1)  # half-way through 4 epochs


def test_a_schedule_over_the_epochs_needs_max_epochs():
    module = attach(tiny(scheduler=CosineSchedule()), max_epochs=None, steps=10)
    with pytest.raises(ValueError, match=r"needs trainer.max_epochs.*scheduler_interval: step"):
        module.configure_optimizers()  # a cosine over one epoch would have been silent


def test_the_one_cycle_schedule_needs_two_steps():
    module = attach(tiny(scheduler=OneCycleSchedule()), max_epochs=1, steps=10)
    with pytest.raises(ValueError, match=r"at least 2 scheduler steps.*scheduler_interval: step"):
        module.configure_optimizers()  # one epoch, stepped per epoch


def test_resuming_under_another_length_is_refused_only_for_run_length_schedules():
    checkpoint = {"schedule_max_epochs": 3}
    multistep = partial(torch.optim.lr_scheduler.MultiStepLR, milestones=[1])
    for free in (None, multistep, ClassifierSGD):
        check_schedule_length(free, checkpoint, 5)
    for bound in (CosineSchedule(), OneCycleSchedule()):
        check_schedule_length(bound, checkpoint, 3)  # the same length: fine
        with pytest.raises(ValueError, match=r"max_epochs=3.*max_epochs=5.*max_epochs 3"):
            check_schedule_length(bound, checkpoint, 5)


def test_a_wrong_interval_is_refused_at_construction():
    with pytest.raises(ValueError, match="scheduler_interval='batch'; choose one of"):
        tiny(scheduler_interval="batch")


def test_reduce_on_plateau_is_given_its_metric():
    plateau = partial(ReduceLROnPlateau, monitor="val/acc", mode="max")
    configured = tiny(scheduler=plateau).configure_optimizers()
    assert configured["lr_scheduler"]["monitor"] == "val/acc"


def test_the_optimizer_is_set_in_one_place_only():
    """Lightning's top-level optimizer would bypass the model's; the CLI does not offer it."""
    config = REPO / "configs" / "quickstart" / "mixup.yaml"
    with pytest.raises(SystemExit) as exit_info:
        run_cli("fit", "--config", config, "--optimizer", "torch.optim.Adam", "--print_config")
    assert exit_info.value.code not in (0, None)


def test_every_training_module_fulfils_the_run_rooms_resume_contract():
    """`mixup_robust.run` resumes through a Protocol; a renamed method would skip it silently."""
    module = tiny(optimizer=partial(ClassifierSGD, lr=0.2), scheduler=CosineSchedule())
    assert isinstance(module, ResumableOptimization)
    assert isinstance(MMDVAE(image_shape=(1, 8, 8)), ResumableOptimization)
    fresh = module.fresh_optimizer()
    assert isinstance(fresh, torch.optim.SGD) and fresh.param_groups[0]["lr"] == 0.2
    assert fresh is not module.fresh_optimizer()  # a new one each time
    module.check_resumed_schedule({"schedule_max_epochs": 3}, 3)
    with pytest.raises(ValueError, match=r"max_epochs=3.*max_epochs=5"):
        module.check_resumed_schedule({"schedule_max_epochs": 3}, 5)

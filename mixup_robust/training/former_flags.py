"""Checkpoints written before issue 13 name their optimizer and schedule by flags.

A classifier checkpoint records its `__init__` arguments; those of earlier versions were
`optimizer` ('sgd' or 'adam'), `lr`, `momentum`, `weight_decay`, `nesterov`, `schedule`
('multistep', 'cosine', 'onecycle' or 'constant'), `milestones`, `gamma` and
`warmup_fraction`. `upgrade_former_flags` writes them as today's `optimizer`, `scheduler`
and `scheduler_interval` (class_path / init_args, as the CLI records them), so that such a
checkpoint can still be evaluated.
"""

from typing import Any

FORMER_DEFAULTS: dict[str, Any] = {
    "optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "nesterov": False,
    "schedule": "multistep", "milestones": (100, 150), "gamma": 0.1, "warmup_fraction": 0.2,
}  # fmt: skip
"""The flags' defaults before issue 13 (ClassifierModule's signature)."""


def has_former_flags(hparams: dict) -> bool:
    """Whether a classifier's hyperparameters name the optimizer and schedule by flags."""
    return "schedule" in hparams or isinstance(hparams.get("optimizer"), str)


def former_optimizer(flags: dict) -> dict:
    """The optimizer of the former flags as a class_path / init_args spec."""
    if flags["optimizer"] == "adam":  # the former Adam: lr and L2 weight decay only
        init_args = {"lr": flags["lr"], "weight_decay": flags["weight_decay"]}
        return {"class_path": "torch.optim.Adam", "init_args": init_args}
    init_args = {key: flags[key] for key in ("lr", "momentum", "weight_decay", "nesterov")}
    return {"class_path": "torch.optim.SGD", "init_args": init_args}


def former_scheduler(flags: dict) -> dict | None:
    """The scheduler of the former flags as a class_path / init_args spec (None: constant)."""
    schedule = flags["schedule"]
    if schedule == "constant":
        return None
    if schedule == "multistep":
        init_args = {"milestones": list(flags["milestones"]), "gamma": flags["gamma"]}
        return {"class_path": "torch.optim.lr_scheduler.MultiStepLR", "init_args": init_args}
    if schedule == "cosine":
        return {"class_path": "mixup_robust.training.CosineSchedule"}
    if schedule == "onecycle":
        init_args = {"warmup_fraction": flags["warmup_fraction"]}
        return {"class_path": "mixup_robust.training.OneCycleSchedule", "init_args": init_args}
    raise ValueError(f"schedule={schedule!r} is not a schedule any version of this project had.")


def upgrade_former_flags(hparams: dict) -> dict:
    """Hyperparameters with former optimizer/schedule flags in today's form (others as is)."""
    if not has_former_flags(hparams):
        return dict(hparams)
    flags = {**FORMER_DEFAULTS, **{k: hparams[k] for k in FORMER_DEFAULTS if k in hparams}}
    upgraded = {key: value for key, value in hparams.items() if key not in FORMER_DEFAULTS}
    upgraded["optimizer"] = former_optimizer(flags)
    upgraded["scheduler"] = former_scheduler(flags)
    upgraded["scheduler_interval"] = "step" if flags["schedule"] == "onecycle" else "epoch"
    return upgraded

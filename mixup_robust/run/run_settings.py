"""The run's settings in every checkpoint, and a resume set up with the user's settings.

`RunSettings` records the data's and trainer's settings in each checkpoint; `read_resumed`
and `prepare_run` are the CLI's hooks: the checkpoint of `fit --ckpt_path` is read before any
class is built (the project's errors for a missing or bad file), and compared with the run
once its classes are built, before any compute (`resume_check.check_resume`). An accepted
change of an optimizer argument (lr, momentum, weight decay, ...) is applied over the
optimizer state the checkpoint restores (`apply_optimizer_settings`), so it is really used.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from rich.console import Console
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler
from typing_extensions import override

from mixup_robust.checkpoints.file import load_checkpoint
from mixup_robust.run.resume_check import (
    SETTINGS_KEY,
    Difference,
    check_resume,
    listing,
    matches,
    parse_overrides,
    settings_of_checkpoint,
    settings_of_run,
)


@runtime_checkable
class ResumableOptimization(Protocol):
    """What a resume needs of a module that builds its own optimizer and schedule.

    Training's `ScheduledModule` (every training method) has it; the run room declares it
    so that it never imports the training methods.
    """

    def fresh_optimizer(self) -> Optimizer:
        """A new optimizer of the module's parameters, with the configured arguments."""
        ...

    def check_resumed_schedule(self, checkpoint: dict, max_epochs: int | None) -> None:
        """Raises if the checkpoint's schedule was laid out over another `max_epochs`."""
        ...


class RunSettings(Callback):
    """Records the data's and trainer's settings in every checkpoint; checks them at a restore.

    The CLI compares a resume's settings before any compute (`check_resume`); this callback
    repeats the check whenever fit restores a checkpoint the CLI did not read (Lightning's
    `ckpt_path="last"` or `"hpc"`, a SLURM requeue), so no path resumes with silently
    different settings. When an optimizer argument was accepted, it is applied at the start
    of training, over the restored optimizer state (`apply_optimizer_settings`).

    Args:
        data: the run's data config (class_path and init_args).
        accepted: the names given to `--resume_overrides`.
    """

    def __init__(self, data: Mapping | None = None, accepted: list[str] | None = None) -> None:
        self.data = dict(data or {})
        self.accepted = list(accepted or [])
        self._new_optimizer_settings = False  # accepted at the restore: applied at the start

    @override
    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict
    ) -> None:
        settings = settings_of_run(pl_module, self.data, trainer)
        checkpoint[SETTINGS_KEY] = {k: v for k, v in settings.items() if k[:6] != "model."}

    @override
    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict
    ) -> None:
        if trainer.state.fn != "fit":
            return
        current = settings_of_run(pl_module, self.data, trainer)
        found = check_resume(
            settings_of_checkpoint(checkpoint), current, self.accepted, "the checkpoint"
        )
        self._new_optimizer_settings = any(
            matches("model.init_args.optimizer", key) for key, _, _ in found
        )

    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._new_optimizer_settings and isinstance(pl_module, ResumableOptimization):
            apply_optimizer_settings(trainer, pl_module)
        self._new_optimizer_settings = False


def apply_optimizer_settings(trainer: L.Trainer, module: ResumableOptimization) -> None:
    """Puts the configured optimizer arguments over those a checkpoint restored.

    Lightning restores the optimizer's param groups (lr, momentum, weight decay, ...) and the
    scheduler's base learning rates from the checkpoint, over the optimizer this run built.
    An accepted change would then be silently dropped; this sets every argument of a freshly
    built optimizer of the module again, and the learning rate where the restored schedule
    stands, computed from the new base rate (closed form where torch has one, a LambdaLR's
    factor, else scaled by new / old base rate).
    """
    fresh = module.fresh_optimizer()
    schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
    for optimizer in trainer.optimizers:
        news = fresh.param_groups
        olds = [group.get("initial_lr", group["lr"]) for group in optimizer.param_groups]
        for group, new in zip(optimizer.param_groups, news, strict=True):
            group.update({k: v for k, v in new.items() if k not in ("params", "lr")})
            if "initial_lr" in group:
                group["initial_lr"] = new["lr"]
            if not schedulers:
                group["lr"] = new["lr"]
        for scheduler in schedulers:
            if scheduler.optimizer is optimizer:
                scheduler.base_lrs = [new["lr"] for new in news]
                rates = _rates_at_position(scheduler, olds)
                for group, rate in zip(optimizer.param_groups, rates, strict=True):
                    group["lr"] = rate
                scheduler._last_lr = list(rates)


def _rates_at_position(scheduler: LRScheduler, old_bases: list[float]) -> list[float]:
    """The learning rates of a restored schedule's position, from its (new) base rates."""
    position = scheduler.last_epoch
    if isinstance(scheduler, LambdaLR):
        factors = scheduler.lr_lambdas
        return [
            base * factor(position)
            for base, factor in zip(scheduler.base_lrs, factors, strict=True)
        ]
    if hasattr(scheduler, "_get_closed_form_lr"):  # torch's MultiStepLR, CosineAnnealingLR, ...
        return list(scheduler._get_closed_form_lr())
    groups = scheduler.optimizer.param_groups
    return [
        group["lr"] * base / old if old else base
        for group, base, old in zip(groups, scheduler.base_lrs, old_bases, strict=True)
    ]


# Lightning's own values of ckpt_path; it resolves them at fit time (RunSettings checks them).
SPECIAL_PATHS = ("last", "hpc", "best")


@dataclass(frozen=True)
class Resumed:
    """What a resume needs of its checkpoint, read before any class is built.

    Attributes:
        path: the checkpoint, as given to `--ckpt_path`.
        settings: its settings (`settings_of_checkpoint`).
        schedule: the length its schedule was laid out for (`check_resumed_schedule`).
    """

    path: str
    settings: dict
    schedule: dict


def read_resumed(ckpt_path: str | Path | None) -> Resumed | None:
    """The checkpoint a run resumes from, with the project's errors for a missing or bad file.

    None without `ckpt_path`, and for Lightning's special values ('last', 'hpc', 'best',
    'registry...') and remote URLs, which `RunSettings` checks when fit restores them.
    """
    if not ckpt_path:
        return None
    text = str(ckpt_path)
    if text in SPECIAL_PATHS or text.startswith("registry") or "://" in text:
        return None
    contents = load_checkpoint(
        Path(text),
        f"--ckpt_path {text}: no such file. Give the checkpoint to resume from "
        "(<run>/checkpoints/last.ckpt).",
    )
    states = contents.get("lr_schedulers") or [{}]
    schedule = {
        "schedule_max_epochs": contents.get("schedule_max_epochs"),
        "lr_schedulers": [{"T_max": states[0].get("T_max")}],
    }
    return Resumed(text, settings_of_checkpoint(contents), schedule)


def prepare_run(
    trainer: L.Trainer,
    model: L.LightningModule,
    data: Mapping | None,
    overrides: str | None,
    resumed: Resumed | None,
) -> None:
    """Sets up `RunSettings`; for a resume, checks its settings before any compute.

    Args:
        trainer: the run's trainer (its `RunSettings` callbacks get `data` and `overrides`).
        model: the module this run trains.
        data: the run's data config (class_path and init_args).
        overrides: the `--resume_overrides` comma list.
        resumed: the checkpoint of a `fit --ckpt_path` (`read_resumed`), else None.

    Raises:
        ResumeMismatchError: see `check_resume`.
        ValueError: the checkpoint's learning-rate schedule was laid out over another
            `trainer.max_epochs` (`check_resumed_schedule`), even when `max_epochs` is
            accepted.
    """
    accepted = parse_overrides(overrides)
    for callback in trainer.callbacks:
        if isinstance(callback, RunSettings):
            callback.data, callback.accepted = dict(data or {}), accepted
    if resumed is None:
        return
    current = settings_of_run(model, data, trainer)
    found = check_resume(resumed.settings, current, accepted, resumed.path)
    if isinstance(model, ResumableOptimization):
        model.check_resumed_schedule(resumed.schedule, trainer.max_epochs)
    if found:
        _report_accepted(found, resumed.path)


@rank_zero_only
def _report_accepted(found: list[Difference], source: str) -> None:
    Console(stderr=True).print(
        f"Resuming from {source} with changed settings (accepted by --resume_overrides; "
        f"config.yaml records this run's values):\n{listing(found)}",
        highlight=False,
        markup=False,
    )

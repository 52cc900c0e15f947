"""The optimizer and learning-rate schedule of a training module, injected from YAML.

A training module takes `optimizer` (any `OptimizerCallable`: a class path such as
`torch.optim.SGD` or `torch.optim.AdamW` with its init_args, which LightningCLI turns into a
callable of the parameters), `scheduler` (any `LRSchedulerCallable`, such as torch's
`MultiStepLR` or `OneCycleLR`; a `RunLengthSchedule` of this project; or None for a constant
learning rate) and `scheduler_interval` ('epoch' or 'step': when the scheduler steps).

A `RunLengthSchedule` is laid out over the whole run, whose length is known only once the
Trainer is attached: the module hands it the number of scheduler steps of the run (epochs or
optimizer steps, per `scheduler_interval`). Such a schedule cannot be resumed under another
`trainer.max_epochs` (`check_schedule_length`).
"""

import abc
import math
from dataclasses import dataclass
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable, ReduceLROnPlateau
from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LRScheduler, MultiStepLR
from torch.optim.optimizer import ParamsT
from typing_extensions import override

SchedulerInterval = Literal["epoch", "step"]
INTERVALS = ("epoch", "step")

ONE_CYCLE_START = 1 / 25
"""The one-cycle schedule starts at lr / 25 (PyTorch's OneCycleLR default)."""


class ClassifierSGD(torch.optim.SGD):
    """torch's SGD with the defaults of this project's classifiers (the training default).

    Args:
        params: the parameters (or parameter groups) to optimize.
        lr: learning rate.
        momentum: momentum factor.
        weight_decay: L2 weight decay of every parameter.
        nesterov: Nesterov momentum.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        nesterov: bool = False,
    ) -> None:
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                         nesterov=nesterov)  # fmt: skip


class ClassicMultiStepLR(MultiStepLR):
    """torch's MultiStepLR with the 200-epoch CIFAR milestones (the training default).

    Args:
        optimizer: the optimizer whose learning rate it sets.
        milestones: epochs (with scheduler_interval 'epoch') at which the rate is multiplied
            by `gamma`.
        gamma: the decay factor.
    """

    def __init__(
        self, optimizer: Optimizer, milestones: tuple[int, ...] = (100, 150), gamma: float = 0.1
    ) -> None:
        super().__init__(optimizer, list(milestones), gamma)


class RunLengthSchedule(abc.ABC):
    """A schedule stretched over the whole run: built once the run's length is known.

    The module recognizes it (isinstance) and calls `build` with the number of scheduler
    steps of the run; such a schedule is not resumed under another `trainer.max_epochs`.
    """

    @abc.abstractmethod
    def build(self, optimizer: Optimizer, total: int) -> LRScheduler:
        """The scheduler of `optimizer` over `total` scheduler steps (epochs or steps)."""


class CosineSchedule(RunLengthSchedule):
    """Cosine annealing from the optimizer's lr to `eta_min` over the whole run.

    Args:
        eta_min: the learning rate at the end of the run.
    """

    def __init__(self, eta_min: float = 0.0) -> None:
        self.eta_min = eta_min

    def build(self, optimizer: Optimizer, total: int) -> CosineAnnealingLR:
        """The CosineAnnealingLR of `optimizer` with T_max = the run's length."""
        return CosineAnnealingLR(optimizer, T_max=total, eta_min=self.eta_min)


@dataclass(frozen=True)
class OneCycleFactor:
    """The one-cycle learning-rate factor of scheduler step `step` (0-based) of `total_steps`.

    Rises linearly from 1/25 at step 0 to 1 at step round(warmup_fraction x total_steps),
    then falls linearly to 1/(steps left) at the last step, reaching 0 just after it.
    """

    total_steps: int
    warmup_fraction: float

    def __call__(self, step: int) -> float:
        """The factor that multiplies the optimizer's lr at scheduler step `step`."""
        warmup = min(max(1, round(self.warmup_fraction * self.total_steps)), self.total_steps - 1)
        if step < warmup:
            return ONE_CYCLE_START + (1 - ONE_CYCLE_START) * step / warmup
        return max(0.0, (self.total_steps - step) / (self.total_steps - warmup))


class OneCycleSchedule(RunLengthSchedule):
    """Linear warm-up from lr / 25 to lr, then linear decay to zero, over the whole run.

    For short, large-batch runs (the fast recipes), with scheduler_interval 'step'. Momentum
    is left as configured (no momentum cycling, unlike torch's OneCycleLR): the schedule
    changes the learning rate only.

    Args:
        warmup_fraction: share of the run spent warming up, in (0, 1).
    """

    def __init__(self, warmup_fraction: float = 0.2) -> None:
        if not 0 < warmup_fraction < 1:
            raise ValueError(f"warmup_fraction={warmup_fraction} must lie in (0, 1).")
        self.warmup_fraction = warmup_fraction

    def build(self, optimizer: Optimizer, total: int) -> LambdaLR:
        """A LambdaLR of `OneCycleFactor` over `total` scheduler steps (at least 2)."""
        if total < 2:
            raise ValueError(
                f"The one-cycle schedule needs at least 2 scheduler steps, but the run has "
                f"{total}: train longer, or set scheduler_interval: step."
            )
        return LambdaLR(optimizer, OneCycleFactor(total, self.warmup_fraction))


def run_length(trainer: L.Trainer, interval: SchedulerInterval) -> int:
    """The number of scheduler steps of the run: epochs, or optimizer steps."""
    if interval == "step":
        total = trainer.estimated_stepping_batches
        if not 1 < total < math.inf:
            raise ValueError(
                "A schedule over the run stepped per optimizer step needs a finite number of "
                "training steps above 1: set trainer.max_epochs or trainer.max_steps."
            )
        return int(total)
    if trainer.max_epochs is None or trainer.max_epochs < 1:  # a run bounded by max_steps only
        raise ValueError(
            "A schedule over the run stepped per epoch needs trainer.max_epochs (this run has "
            f"max_epochs={trainer.max_epochs}): set it, or set scheduler_interval: step to lay "
            "the schedule out over the run's optimizer steps."
        )
    return trainer.max_epochs


def check_interval(interval: str) -> None:
    """Raises before any compute when `interval` is not one Lightning knows."""
    if interval not in INTERVALS:
        raise ValueError(f"scheduler_interval={interval!r}; choose one of {INTERVALS}.")


def check_schedule_length(scheduler: object, checkpoint: dict, max_epochs: int | None) -> None:
    """Raises if a `RunLengthSchedule` is resumed with another `trainer.max_epochs`.

    Args:
        scheduler: the module's scheduler (only a `RunLengthSchedule` depends on the length).
        checkpoint: the checkpoint being resumed.
        max_epochs: this run's `trainer.max_epochs`.
    """
    if not isinstance(scheduler, RunLengthSchedule):
        return
    planned = checkpoint.get("schedule_max_epochs")
    if planned is None:  # checkpoints written before the length was recorded
        states = checkpoint.get("lr_schedulers") or [{}]
        planned = states[0].get("T_max")
    if planned is None or planned == max_epochs:
        return
    raise ValueError(
        f"The checkpoint's {type(scheduler).__name__} learning-rate schedule was laid out over "
        f"trainer.max_epochs={planned}, but this run has max_epochs={max_epochs}. Resuming "
        f"would follow the old curve (beyond epoch {planned} a cosine trains at lr 0). Resume "
        f"with --trainer.max_epochs {planned}, or, to train longer, start a new run with the "
        "longer max_epochs (or use a scheduler that does not depend on the run's length, "
        "such as torch.optim.lr_scheduler.MultiStepLR)."
    )


class ScheduledModule(L.LightningModule):
    """A LightningModule trained by an injected optimizer and learning-rate schedule.

    Subclasses call `set_optimization` in `__init__` with their `optimizer`, `scheduler` and
    `scheduler_interval` arguments (see the module docstring) and may override
    `optimized_parameters`. The checkpoint records `trainer.max_epochs`, and resuming a
    `RunLengthSchedule` under another one is refused.
    """

    def set_optimization(
        self,
        optimizer: OptimizerCallable,
        scheduler: LRSchedulerCallable | RunLengthSchedule | None,
        interval: SchedulerInterval,
    ) -> None:
        """Keeps the optimizer and scheduler callables until the Trainer asks for them."""
        check_interval(interval)
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.scheduler_interval = interval

    def optimized_parameters(self) -> ParamsT:
        """What the optimizer optimizes: every parameter (override for parameter groups)."""
        return self.parameters()

    def fresh_optimizer(self) -> Optimizer:
        """A new optimizer of `optimized_parameters`, with the configured arguments."""
        return self.optimizer_factory(self.optimized_parameters())

    def check_resumed_schedule(self, checkpoint: dict, max_epochs: int | None) -> None:
        """Raises if a `RunLengthSchedule` is resumed under another `trainer.max_epochs`.

        The run room's resume (`mixup_robust.run.run_settings`) calls it, as this module's
        own `on_load_checkpoint` does (`check_schedule_length`).
        """
        check_schedule_length(self.scheduler_factory, checkpoint, max_epochs)

    def configure_optimizers(self) -> OptimizerLRScheduler:
        """The optimizer, and its scheduler (in Lightning's dict) unless it is None."""
        optimizer = self.fresh_optimizer()
        scheduler = self.scheduler_factory
        if scheduler is None:
            return optimizer
        if isinstance(scheduler, RunLengthSchedule):
            built = scheduler.build(optimizer, run_length(self.trainer, self.scheduler_interval))
        else:
            built = scheduler(optimizer)
        config: dict[str, Any] = {"scheduler": built, "interval": self.scheduler_interval}
        if isinstance(built, ReduceLROnPlateau):  # Lightning's: it names its monitored metric
            config["monitor"] = built.monitor
        return {"optimizer": optimizer, "lr_scheduler": config}

    @override
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["schedule_max_epochs"] = self.trainer.max_epochs

    @override
    def on_load_checkpoint(self, checkpoint: dict) -> None:
        trainer = self._trainer
        if trainer is None or trainer.state.fn != "fit":
            return  # loading weights for evaluation: the schedule plays no part
        self.check_resumed_schedule(checkpoint, trainer.max_epochs)

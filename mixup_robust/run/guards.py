"""Training stops at the first non-finite loss and never writes non-finite weights."""

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.types import STEP_OUTPUT
from typing_extensions import override

from mixup_robust.checkpoints.file import non_finite_entries


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the run stops with the step that did it."""


class NonFiniteWeightsError(RuntimeError):
    """A checkpoint would hold NaN or infinite weights; it is not written."""


def _loss_of(outputs: STEP_OUTPUT) -> torch.Tensor | None:
    if isinstance(outputs, torch.Tensor):
        return outputs
    if isinstance(outputs, dict) and isinstance(outputs.get("loss"), torch.Tensor):
        return outputs["loss"]
    return None


class FiniteTraining(Callback):
    """Stops training at the first non-finite loss; refuses to save non-finite weights.

    Every training step's loss is checked. On a GPU, reading a loss on the host waits for
    the step to finish (a host-device sync per step, which costs throughput at millisecond
    steps), so the losses are kept on the device and read together every `every_n_steps`
    steps, at each epoch's end and before every checkpoint; the error still names the first
    non-finite step. On the CPU the check is free and runs every step. Under DDP the ranks
    agree on it (one small all-reduce per check), so every rank stops at the same step. A
    checkpoint whose weights are not finite is never written, so neither `last.ckpt` nor a
    "best" checkpoint can hold a diverged model: the last one on disk is the last finite state.

    Args:
        every_n_steps: steps between two reads of the losses; None: every step on the CPU,
            every 50 steps on an accelerator.
    """

    def __init__(self, every_n_steps: int | None = None) -> None:
        if every_n_steps is not None and every_n_steps < 1:
            raise ValueError(f"every_n_steps={every_n_steps} must be at least 1.")
        self.every_n_steps = every_n_steps
        self._pending: list[tuple[torch.Tensor, int, int, int]] = []

    def _interval(self, loss: torch.Tensor) -> int:
        if self.every_n_steps is not None:
            return self.every_n_steps
        return 1 if loss.device.type == "cpu" else 50

    @override
    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: STEP_OUTPUT,
        batch: object,
        batch_idx: int,
    ) -> None:
        loss = _loss_of(outputs)
        if loss is None:
            return
        step = (loss.detach().float().mean(), trainer.current_epoch, batch_idx, trainer.global_step)
        self._pending.append(step)
        if len(self._pending) >= self._interval(loss):
            self.check(trainer)

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check(trainer)

    def check(self, trainer: L.Trainer) -> None:
        """Reads the pending losses (one sync) and raises at the first non-finite one."""
        pending, self._pending = self._pending, []
        if not pending:  # ranks step in lockstep, so every rank skips the all-reduce alike
            return
        finite_each = torch.isfinite(torch.stack([entry[0] for entry in pending]))
        finite = bool(finite_each.all())
        if trainer.strategy.reduce_boolean_decision(finite, all=True):
            return
        if finite:  # another rank diverged; this one stops with it
            raise NonFiniteLossError(
                "The training loss became NaN or infinite on another process; training stops "
                "on every process. See that process's error for the step and the causes."
            )
        first = int((~finite_each).nonzero()[0])
        value, epoch, batch_idx, global_step = pending[first]
        lr = ", ".join(f"{group['lr']:g}" for o in trainer.optimizers for group in o.param_groups)
        raise NonFiniteLossError(
            f"The training loss is {float(value)} at epoch {epoch}, batch {batch_idx} "
            f"(optimizer step {global_step}); training stops here and writes no "
            "checkpoint of this state. Likely causes: a learning rate too high for this model "
            f"(now {lr}; lower model.init_args.optimizer.init_args.lr), an unstable loss "
            "setting (e.g. a huge loss weight), or non-finite input data. The last checkpoint "
            "on disk "
            "(<run>/checkpoints/last.ckpt) holds the last finite state."
        )

    @override
    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict
    ) -> None:
        self.check(trainer)
        broken = non_finite_entries(checkpoint.get("state_dict", {}))
        if broken:
            raise NonFiniteWeightsError(
                f"Refusing to save a checkpoint at epoch {trainer.current_epoch}, step "
                f"{trainer.global_step}: weights {broken[:3]} hold NaN or inf (the model "
                "diverged). Lower model.init_args.optimizer.init_args.lr and train again; the "
                "checkpoints already on disk are unchanged."
            )

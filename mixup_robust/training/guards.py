"""Training stops at the first non-finite loss and never writes non-finite weights."""

import math

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from mixup_robust.nets.checkpoint_file import non_finite_entries


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the run stops with the step that did it."""


class NonFiniteWeightsError(RuntimeError):
    """A checkpoint would hold NaN or infinite weights; it is not written."""


def _loss_of(outputs) -> torch.Tensor | None:
    if isinstance(outputs, torch.Tensor):
        return outputs
    if isinstance(outputs, dict) and isinstance(outputs.get("loss"), torch.Tensor):
        return outputs["loss"]
    return None


class FiniteTraining(Callback):
    """Stops training at the first non-finite loss; refuses to save non-finite weights.

    The check runs after every training batch. Under DDP the ranks agree on it (one small
    all-reduce), so every rank stops at the same step instead of the others hanging. A
    checkpoint whose weights are not finite is never written, so neither `last.ckpt` nor a
    "best" checkpoint can hold a diverged model: the last one on disk is the last finite state.
    """

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        loss = _loss_of(outputs)
        finite = loss is None or bool(torch.isfinite(loss.detach()).all())
        if trainer.strategy.reduce_boolean_decision(finite, all=True):
            return
        value = float(loss.detach().float().mean()) if loss is not None else math.nan
        lr = ", ".join(f"{group['lr']:g}" for o in trainer.optimizers for group in o.param_groups)
        raise NonFiniteLossError(
            f"The training loss is {value} at epoch {trainer.current_epoch}, batch {batch_idx} "
            f"(optimizer step {trainer.global_step}); training stops here and writes no "
            "checkpoint of this state. Likely causes: a learning rate too high for this model "
            f"(now {lr}; lower model.init_args.lr), an unstable loss setting (e.g. a huge "
            "loss weight), or non-finite input data. The last checkpoint on disk "
            "(<run>/checkpoints/last.ckpt) holds the last finite state."
        )

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict
    ) -> None:
        broken = non_finite_entries(checkpoint.get("state_dict", {}))
        if broken:
            raise NonFiniteWeightsError(
                f"Refusing to save a checkpoint at epoch {trainer.current_epoch}, step "
                f"{trainer.global_step}: weights {broken[:3]} hold NaN or inf (the model "
                "diverged). Lower model.init_args.lr and train again; the checkpoints already "
                "on disk are unchanged."
            )

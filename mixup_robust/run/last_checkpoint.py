"""`last.ckpt`: the state after the last finished training epoch, or at a SIGTERM."""

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.types import STEP_OUTPUT
from typing_extensions import override


class LastCheckpoint(Checkpoint):
    """Writes `last.ckpt` after every training epoch and at the step a SIGTERM arrives in.

    Lightning's `ModelCheckpoint(save_last=True)` writes `last.ckpt` (since 2.6) only in a
    step where it also writes a top-k checkpoint, so with a monitored metric it is a copy of
    the best one, and a resume from it trains the later epochs again. This callback does not
    depend on validation or on `save_last`:

    - at every training epoch's end (after validation and after the module's own
      `on_train_epoch_end`, where Lightning takes its epoch-end checkpoints), so a resume
      starts the next epoch;
    - at the end of the training batch during which the process got SIGTERM (a scheduler's
      time limit, `kill`); the run then stops (Lightning's `SIGTERMException`: exit status
      143 from the CLI) and a resume continues with the next batch of that epoch (the data
      module skips the batches already trained). Under DDP the ranks agree on the signal at
      each batch (one all-reduce of a flag), so all of them save and stop at the same step.
      A SIGTERM during validation stops the run without a save: `last.ckpt` stays the state
      it held before.

    The file goes beside the run's `ModelCheckpoint` files (`<log dir>/checkpoints`) unless
    `dirpath` is given; it is replaced as a whole (the trainer's checkpoint IO).

    Args:
        dirpath: the folder of `last.ckpt`; None: the first ModelCheckpoint's folder, else
            `<log dir>/checkpoints`.
    """

    FILENAME = "last.ckpt"

    def __init__(self, dirpath: str | Path | None = None) -> None:
        self.dirpath = None if dirpath is None else Path(dirpath)
        self.last_model_path = ""

    def path(self, trainer: L.Trainer) -> Path:
        """Where `last.ckpt` goes (the same path on every rank)."""
        if self.dirpath is not None:
            return self.dirpath / self.FILENAME
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.dirpath is not None:
                return Path(callback.dirpath) / self.FILENAME
        folder = Path(trainer.log_dir or trainer.default_root_dir) / "checkpoints"
        return Path(trainer.strategy.broadcast(str(folder))) / self.FILENAME

    def save(self, trainer: L.Trainer) -> Path:
        """Writes `last.ckpt` now (every rank must call it); returns its path."""
        path = self.path(trainer)
        trainer.save_checkpoint(path)
        self.last_model_path = str(path)
        return path

    @override
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.fast_dev_run and not trainer.sanity_checking:
            self.save(trainer)

    @override
    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: STEP_OUTPUT,
        batch: object,
        batch_idx: int,
    ) -> None:
        signalled = trainer.received_sigterm
        if trainer.world_size > 1:
            signalled = trainer.strategy.reduce_boolean_decision(signalled, all=False)
        if not signalled:
            return
        if not trainer.fast_dev_run:
            self.save(trainer)
        raise SIGTERMException

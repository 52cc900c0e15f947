"""A run refused before any compute leaves no run directory behind."""

import time
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback
from typing_extensions import override

# What Lightning and the CLI write into `version_N/` before the first batch.
_SETUP_FILES = ("config.yaml", "hparams.yaml", "metrics.csv", "events.out.tfevents.*")


class RefusalCleanup(Callback):
    """Removes the run directory that a run refused before its first batch created.

    Lightning creates `<default_root_dir>/lightning_logs/version_N/` (the logger's files and
    config.yaml) before the module's `setup`, where most refusals come from (a missing or
    wrong checkpoint, an output directory of an earlier run). When an error stops the run
    before any batch, this callback deletes the files of that list written by this run (none
    older than the callback), then the folder and `lightning_logs/` if they are empty; any
    other file, and a run that computed anything, stay as they are.
    """

    def __init__(self) -> None:
        self._started = time.time() - 1.0  # file times may be rounded down to the second
        self._computed = False

    def _batch_started(self, *args: object) -> None:
        self._computed = True

    on_train_batch_start = _batch_started
    on_validation_batch_start = _batch_started
    on_test_batch_start = _batch_started
    on_predict_batch_start = _batch_started

    @override
    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if self._computed or not trainer.is_global_zero or trainer.log_dir is None:
            return
        folder = Path(trainer.log_dir)
        if not folder.is_dir():
            return
        for pattern in _SETUP_FILES:
            for path in folder.glob(pattern):
                if path.is_file() and path.stat().st_mtime >= self._started:
                    path.unlink()
        for empty in (folder / "checkpoints", folder, folder.parent):
            if empty.is_dir() and not any(empty.iterdir()):
                empty.rmdir()

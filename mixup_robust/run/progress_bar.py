"""Rich progress bars: without `v_num`, and one that reads the metrics every few steps."""

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.utilities.types import STEP_OUTPUT
from typing_extensions import override


class RichBar(RichProgressBar):
    """`RichProgressBar` without Lightning's `v_num` (the logger's version number) in the bar.

    The run's directory is printed where it matters (checkpoints, results); a `v_num: 0.000`
    beside the loss reads as a metric. Takes `RichProgressBar`'s arguments.
    """

    @override
    def get_metrics(
        self, trainer: L.Trainer, pl_module: L.LightningModule
    ) -> dict[str, int | str | float | dict[str, float]]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


class ThrottledProgressBar(RichBar):
    """`RichBar` whose training metrics (the loss) are read every `metrics_every` steps.

    Lightning's rich bar reads the progress-bar metrics after every training batch, and
    reading a logged CUDA tensor (`.item()`) waits for the GPU to finish all queued work: one
    host-device synchronization per step, so the host can no longer run ahead of the GPU.
    This bar moves on every step but reads the metrics only every `metrics_every` optimizer
    steps and at the end of each epoch. On CPU it shows the same bar with a less fresh loss.

    Args:
        metrics_every: optimizer steps between two reads of the training metrics (50).
        **kwargs: see `RichProgressBar` (e.g. `leave: true`).
    """

    def __init__(self, metrics_every: int = 50, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if metrics_every < 1:
            raise ValueError(f"metrics_every={metrics_every} must be at least 1.")
        self.metrics_every = metrics_every
        self._read_metrics = True

    @override
    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: STEP_OUTPUT,
        batch: object,
        batch_idx: int,
    ) -> None:
        self._read_metrics = trainer.global_step % self.metrics_every == 0
        try:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        finally:
            self._read_metrics = True

    def _update_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The one place where RichProgressBar reads the metrics; the bar itself still moves.
        if self._read_metrics:
            super()._update_metrics(trainer, pl_module)

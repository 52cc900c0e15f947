"""SLURM pre-emption: Lightning's auto-requeue, with the checkpoint taken between batches."""

import signal
import threading
from types import FrameType

import lightning as L
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.types import STEP_OUTPUT
from typing_extensions import override

from mixup_robust.run.last_checkpoint import LastCheckpoint


class PreemptionCheckpoint(Callback):
    """Defers Lightning's SLURM auto-requeue to the end of the current training batch.

    SLURM sends a signal (`#SBATCH --signal=USR1@90`) some time before it kills a job.
    Lightning's handler saves `hpc_ckpt_<n>.ckpt` in `default_root_dir` and requeues the job
    (`scontrol requeue`); the requeued run resumes from that checkpoint. Run straight from the
    signal, it would save whatever state the interrupted line left (half an optimizer step, a
    batch counted but not trained). This callback only notes the signal and calls the same
    Lightning handler after the batch, when weights, optimizer, progress counters and the data
    position agree, so the resumed run continues exactly (the data module skips the batches
    already trained in the epoch). Under DDP the ranks agree on the batch (one all-reduce per
    batch, only when auto-requeue is on). `last.ckpt` (`LastCheckpoint`) is written first with
    the same state, so it too is the pre-emption step's. Inactive outside SLURM or with
    `auto_requeue=False`.
    """

    def __init__(self) -> None:
        self.pending: int | None = None  # the signal received, until it is handled
        self._previous = None
        self._signal: int | None = None

    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Private in Lightning, but the only place its SLURM plugin (and settings) live.
        environment = trainer._accelerator_connector.cluster_environment
        active = isinstance(environment, SLURMEnvironment) and environment.auto_requeue
        if not active or threading.current_thread() is not threading.main_thread():
            return
        self._signal = environment.requeue_signal or signal.SIGUSR1
        # Registered before Lightning's own (it then leaves the signal to this handler).
        self._previous = signal.signal(self._signal, self._note)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.pending = signum

    @override
    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: STEP_OUTPUT,
        batch: object,
        batch_idx: int,
    ) -> None:
        if self._signal is None:
            return
        if not trainer.strategy.reduce_boolean_decision(self.pending is not None, all=False):
            return
        signum, self.pending = self.pending or self._signal, None
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, LastCheckpoint):
                callback.save(trainer)
        # Lightning's SLURM handler: finalizes the loggers, saves hpc_ckpt_<n>.ckpt in
        # default_root_dir and runs `scontrol requeue`; SLURM then ends this job.
        trainer._signal_connector._slurm_sigusr_handler_fn(signum, None)

    @override
    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._signal is not None and self._previous is not None:
            signal.signal(self._signal, self._previous)
        self._signal = self._previous = None

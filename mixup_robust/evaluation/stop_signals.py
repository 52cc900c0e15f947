"""SIGTERM and SLURM's warning signal stop an evaluation between units, with its work kept.

Lightning notes a SIGTERM (`trainer.received_sigterm`) but its test loop only stops between
batches, and never after the last one: an evaluation that runs as one batch (the audit) would
go on until the scheduler's SIGKILL. `StopSignals` also notes SLURM's warning signal
(`#SBATCH --signal=USR1@90`), and the measurement asks `requested` between units (trials,
rungs, defenses): every finished unit is already committed to the store, so it stops at once
with `EvaluationStopped`, which the CLI turns into exit status 143. Under SLURM with
auto-requeue (Lightning's default there) the job is requeued first, as `fit` does, and the
requeued job resumes the evaluation.
"""

import os
import shlex
import signal
import subprocess
import sys
import threading
from types import FrameType

import lightning as L
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities.exceptions import SIGTERMException
from rich.console import Console


class EvaluationStopped(SIGTERMException):
    """An evaluation stopped by a signal after its last finished unit (exit status 143)."""


class StopSignals:
    """Notes SIGTERM (through Lightning) and SLURM's requeue signal during the test loop."""

    def __init__(self) -> None:
        self.pending: int | None = None
        self._signal: int | None = None
        self._previous: object = None
        self._requeue = False

    def install(self, trainer: L.Trainer) -> None:
        """Listens for the requeue signal (SIGUSR1, or SLURM's configured one) until `remove`."""
        self.pending = None
        if threading.current_thread() is not threading.main_thread():
            return
        environment = trainer._accelerator_connector.cluster_environment
        slurm = isinstance(environment, SLURMEnvironment)
        self._requeue = slurm and environment.auto_requeue
        requeue_signal = environment.requeue_signal if slurm else None
        self._signal = requeue_signal or signal.SIGUSR1
        # Replaces Lightning's SLURM handler for the test loop: it would save a training
        # checkpoint of this measurement module, which nothing resumes from.
        self._previous = signal.signal(self._signal, self._note)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.pending = signum

    def remove(self) -> None:
        """Restores the previous handler of the requeue signal."""
        if self._signal is not None and threading.current_thread() is threading.main_thread():
            signal.signal(self._signal, self._previous)  # type: ignore[arg-type]
        self._signal = self._previous = None

    def requested(self, trainer: L.Trainer) -> bool:
        """Whether this process got SIGTERM or the requeue signal.

        Decided by each rank alone, with no collective: under DDP the ranks may have
        different numbers of units (an uneven split of the test set), and a collective per
        unit would wait forever. Every rank gets the signal: SLURM's `srun` sends it to every
        task, and Lightning forwards a SIGTERM to the ranks it started.
        """
        return bool(trainer.received_sigterm) or self.pending is not None

    def stop(self, trainer: L.Trainer, directory: object) -> None:
        """Requeues the SLURM job if asked to, prints how to resume, and raises.

        Raises:
            EvaluationStopped: always.
        """
        requeued = self.pending is not None and self._requeue and trainer.is_global_zero
        if requeued:
            requeue_slurm_job()
        if trainer.is_global_zero:
            command = shlex.join(["python", *sys.argv]) if sys.argv else "the same command"
            what = "SLURM's warning signal" if self.pending is not None else "SIGTERM"
            Console(stderr=True, soft_wrap=True).print(
                f"[bold red]Stopped by {what}[/]: every finished unit of the evaluation is "
                f"kept in the store in {directory}. "
                + ("SLURM requeues the job, which resumes it. " if requeued else "")
                + f"Resume it with the same command:\n  {command}",
                highlight=False,
            )
        raise EvaluationStopped


def requeue_slurm_job() -> None:
    """`scontrol requeue` of this job (an array task by its array job and task id)."""
    array_job = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array_job is not None:
        job = f"{array_job}_{os.environ['SLURM_ARRAY_TASK_ID']}"
    else:
        job = os.environ["SLURM_JOB_ID"]
    done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
    if done.returncode != 0:
        Console(stderr=True, soft_wrap=True).print(
            f"scontrol requeue {job} failed ({done.stderr.strip()}); resubmit the job to resume.",
            highlight=False,
        )

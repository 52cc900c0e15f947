"""Progress of a long evaluation: per step within each batch, with the time left."""

import time
from datetime import timedelta

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from rich.console import Console


class AttackProgress:
    """One step per (batch, trial, attack or rung[, defense]) unit of work, with the time left.

    Lightning's own bar advances once per test batch, and one batch of AutoAttack (or the
    whole audit, which runs as one batch) can take an hour. With the rich progress bar this
    adds a task to it (its columns show elapsed and remaining time) that names the step
    running now; without a terminal (a cluster job's log) or without the bar, it prints one
    line per finished step with the time left. Steps that a resumed run skips (finished
    before) leave the total and the estimate. Rank 0 only.
    """

    def __init__(self) -> None:
        self.bar = None
        self.task = None
        self.console: Console | None = None
        self.total = self.done = 0
        self.started = 0.0

    def start(self, trainer: L.Trainer, units_per_batch: int) -> None:
        """Sets the total: `units_per_batch` steps for every test batch of this rank."""
        batches = sum(int(n) for n in trainer.num_test_batches)
        self.total, self.done, self.started = units_per_batch * batches, 0, time.monotonic()
        self.bar = self.task = self.console = None
        if not trainer.is_global_zero:
            return
        callback = trainer.progress_bar_callback
        progress = callback.progress if isinstance(callback, RichProgressBar) else None
        if progress is not None:
            self.bar = progress
            self.task = progress.add_task("attacks", total=self.total)
        console = Console(stderr=True, soft_wrap=True)  # a log line stays one line
        if progress is None or not console.is_terminal:
            self.console = console

    def skip(self, steps: int) -> None:
        """Takes `steps` finished by an earlier run (resumed) out of the total."""
        self.total -= steps
        if self.bar is not None:
            self.bar.update(self.task, total=self.total)

    def advance(self, description: str) -> None:
        """Counts one step done; `description` names it (e.g. 'PGD-10 on MI-OL')."""
        self.done += 1
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=description)
        if self.console is not None:
            elapsed = time.monotonic() - self.started
            left = elapsed / self.done * max(self.total - self.done, 0)
            self.console.print(
                f"evaluation: {self.done}/{self.total} steps, {description} done, "
                f"elapsed {timedelta(seconds=round(elapsed))}, "
                f"about {timedelta(seconds=round(left))} left",
                highlight=False,
            )

    def stop(self) -> None:
        """Hides the task in the rich bar and stops updating it (end of the test loop)."""
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, visible=False)
        self.bar = self.task = None

"""Progress of a long evaluation: per attack within each batch, with the time left."""

import time
from datetime import timedelta

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from rich.console import Console


class AttackProgress:
    """One step per (batch, attack[, defense]) unit of the test loop, with the time left.

    Lightning's own bar advances once per test batch, and one batch of AutoAttack can take
    an hour. With the rich progress bar this adds a task to it (its columns show elapsed and
    remaining time) that names the attack running now; without a terminal (a cluster job's
    log) or without the bar, it prints one line per finished batch with the time left. Rank
    0 only.
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
        console = Console(stderr=True)
        if progress is None or not console.is_terminal:
            self.console = console

    def advance(self, description: str) -> None:
        """Counts one unit done; `description` names the next (e.g. 'PGD-10 on MI-OL')."""
        self.done += 1
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=description)

    def end_batch(self, batch_idx: int) -> None:
        """Prints the batch's line (only without a live bar in a terminal)."""
        if self.console is None or not self.done:
            return
        elapsed = time.monotonic() - self.started
        left = elapsed / self.done * (self.total - self.done)
        self.console.print(
            f"evaluation: batch {batch_idx + 1}, {self.done}/{self.total} attack steps, "
            f"elapsed {timedelta(seconds=round(elapsed))}, "
            f"about {timedelta(seconds=round(left))} left"
        )

    def stop(self) -> None:
        """Hides the attack task in the rich bar and stops updating it (end of the test loop)."""
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, visible=False)
        self.bar = self.task = None

"""Shared base of measurement modules: a trained classifier scored once, in `test`."""

import time
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_only
from rich.console import Console
from rich.table import Table
from torch import nn
from typing_extensions import override

from mixup_robust.checkpoints.external import ExternalClassifier, load_any_classifier
from mixup_robust.evaluation.run_files import (
    CONFIG_FILE,
    log_records,
    staged_run_files,
    write_results,
)
from mixup_robust.evaluation.run_guard import RunGuard, RunLock
from mixup_robust.evaluation.run_store import merge_when_complete, open_run_store, resume_config
from mixup_robust.evaluation.stop_signals import StopSignals
from mixup_robust.evaluation.store import Unit, UnitStore, parse_shard
from mixup_robust.precision import refuse_reduced_precision
from mixup_robust.seeding import resolve_seed


class MeasurementModule(L.LightningModule):
    """Loads a classifier (our checkpoint or your own model) and writes its measurements once.

    Subclasses split their work into units (a batch, a trial of it, a rung ...): each skips a
    unit that `unit_done` says is finished, commits each finished unit's per-sample records
    with `commit_unit` (the per-sample store, `evaluation/store.py`), and computes its results
    from `finished_units` in `on_test_epoch_end`, then calls `report`. Rerunning the same
    command into the same directory resumes an interrupted run; results go to results.json
    and results.csv (atomically; an earlier run's files are never overwritten), with the CLI's
    resolved config beside them, then the figures (best-effort: a failed figure is a warning).

    Args:
        checkpoint: training checkpoint of the classifier (`<run>/checkpoints/last.ckpt`), or
            an `ExternalClassifier` (a model this project did not train).
        num_classes: classes of the data (linked by the CLI; checked against the checkpoint).
        image_shape: (C, H, W) of the data (linked; checked against the checkpoint).
        output_dir: where results go; default: the run's log directory.
        seed: seed of the measurement's random draws; None follows the run's seed.
        shard: `i/n` computes only every n-th test batch, from the i-th on (1-based), into
            its own store file, so n jobs (a SLURM array) share one evaluation; the last
            shard to finish writes the results of all. None: every batch (and any shard files
            in the directory count as finished work: rerunning without `shard` merges them).
    """

    # False: finished units are kept in memory only, no store file (the benchmark's baseline).
    use_store: bool = True

    def __init__(
        self,
        checkpoint: str | ExternalClassifier,
        num_classes: int | None = None,
        image_shape: tuple[int, int, int] | None = None,
        output_dir: str | None = None,
        seed: int | None = None,
        shard: str | None = None,
    ) -> None:
        super().__init__()
        self.shard = parse_shard(shard)
        self.checkpoint = checkpoint
        self.expected = {"num_classes": num_classes, "image_shape": image_shape}
        self.output_dir = output_dir
        self.seed = resolve_seed(seed)
        self.classifier: nn.Module | None = None
        self.trained: dict = {}
        self.results: list[dict] = []
        self._run_dirs: tuple[Path, bool] = (Path(output_dir or "."), True)
        self._outputs_checked = False
        self.unit_store: UnitStore = UnitStore()
        self.stop_signals = StopSignals()
        self._lock: RunLock | None = None
        self._merge_lock: RunLock | None = None

    @override
    def setup(self, stage: str) -> None:
        if self._trainer is not None:  # before loading anything: bf16 would be silently ignored
            refuse_reduced_precision(self._trainer.precision, type(self).__name__)
        if self.classifier is None:
            classifier, self.trained = load_any_classifier(
                self.checkpoint, self.expected["image_shape"]
            )
            self.check_matches_data(self.trained)
            self.classifier = classifier.eval().requires_grad_(False)
        # trainer.log_dir is a collective under DDP (a broadcast): read it here, on every
        # rank, never from rank-0-only code such as `report`.
        self._run_dirs = self._find_run_dirs()
        if stage == "test":
            self._open_run()

    @override
    def configure_callbacks(self) -> list[L.Callback]:
        return [RunGuard()]

    def _open_run(self) -> None:
        """Checks and locks the run directory (rank 0), then opens this rank's store."""
        config = resume_config(self._resolved_config(), type(self).__qualname__, self.seed)
        self.unit_store, self._lock = open_run_store(
            self.trainer, self.results_dir, config, self._config_is_ours, self.shard,
            self.use_store, type(self).__name__,
        )  # fmt: skip

    def in_shard(self, batch_idx: int) -> bool:
        """Whether test batch `batch_idx` is this run's (always, without `shard`)."""
        return self.shard is None or batch_idx % self.shard[1] == self.shard[0] - 1

    def ready_to_report(self) -> bool:
        """Marks this rank's store complete; whether the results of the whole run can be written.

        Without shards: yes. A shard: only when every shard is complete; it then reads their
        files as finished work (see `evaluation.run_store.merge_when_complete`).
        """
        merged, lock = merge_when_complete(
            self.trainer, self.results_dir, self.unit_store, self.shard
        )
        if merged is None:
            return False
        self.unit_store, self._merge_lock = merged, lock
        return True

    def close_run(self) -> None:
        """Closes this rank's store and releases the run directory's lock."""
        self.unit_store.close()
        for lock in (self._lock, self._merge_lock):
            if lock is not None:
                lock.release()
        self._lock = self._merge_lock = None

    # ------------------------------------------------------------------ units of work
    def unit_done(self, name: str) -> bool:
        """Whether the unit `name` finished (in this run, or in the run it resumes)."""
        return self.unit_store.done(name)

    def commit_unit(
        self,
        name: str,
        batch: int,
        part: int,
        rows: Sequence[tuple],
        payload: object = None,
        started: float | None = None,
    ) -> None:
        """Commits one finished unit to the store, then stops if a stop signal came.

        Args:
            name: the unit's key, unique in the run.
            batch: the test batch it belongs to.
            part: its order within the batch.
            rows: per-sample records (`evaluation.store.sample_rows`).
            payload: the unit's JSON-able summary the results are computed from, or None.
            started: `time.perf_counter()` when the unit began (its seconds are recorded).
        """
        seconds = 0.0 if started is None else time.perf_counter() - started
        self.unit_store.commit(Unit(name, batch, part, payload, seconds), rows)
        self.stop_if_requested()

    def stop_if_requested(self) -> None:
        """Raises `EvaluationStopped` (after the finished units are stored) on a stop signal."""
        if self._trainer is not None and self.stop_signals.requested(self._trainer):
            self.stop_signals.stop(self._trainer, self.results_dir)

    def finished_units(self) -> list[Unit]:
        """This rank's finished units, in the run's order (by batch, then part)."""
        return self.unit_store.units()

    def unit_rows(self, name: str) -> list[tuple]:
        """The per-sample rows of one finished unit, in their committed order."""
        return self.unit_store.rows(name)

    @override
    def on_test_batch_start(self, batch: tuple, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.check_finite_outputs(batch)

    @override
    def on_predict_batch_start(self, batch: tuple, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.check_finite_outputs(batch)

    def check_finite_outputs(self, batch: tuple) -> None:
        """Raises when the classifier's logits on the run's first clean batch are not finite.

        Finite weights can still overflow (weights scaled by 1e30): every prediction is then
        the same class and every score meaningless, so the run stops before any attack. Runs
        once per run, on every rank; the ranks agree on the decision.
        """
        if self._outputs_checked or self.classifier is None:
            return
        self._outputs_checked = True
        with torch.no_grad():
            finite = bool(torch.isfinite(self.classifier(batch[0])).all())
        if self._trainer is not None:
            finite = self._trainer.strategy.reduce_boolean_decision(finite, all=True)
        if not finite:
            raise ValueError(
                f"The classifier of {self.checkpoint} gives non-finite logits (NaN or inf) on "
                "the first clean test batch, although its weights are finite: they overflow. "
                "Every accuracy, attack and detection score of it would be meaningless. Use "
                "another checkpoint (an earlier one of its run)."
            )

    def _find_run_dirs(self) -> tuple[Path, bool]:
        """The results directory, and whether this module writes config.yaml into it.

        Lightning's SaveConfigCallback writes this run's config.yaml into its fresh log
        directory; only elsewhere (an `output_dir`) does this module write it.
        """
        trainer = self.trainer
        log_dir = trainer.log_dir
        results = Path(self.output_dir or log_dir or trainer.default_root_dir)
        lightning_writes = log_dir is not None and any(
            isinstance(c, SaveConfigCallback) for c in trainer.callbacks
        )
        return results, not (lightning_writes and results.resolve() == Path(log_dir).resolve())

    def check_matches_data(self, hparams: dict) -> None:
        """Raises if the checkpoint's classes or image shape differ from the data's."""
        for key, expected in self.expected.items():
            trained = hparams.get(key)
            if expected is not None and trained is not None and _plain(trained) != _plain(expected):
                raise ValueError(
                    f"The checkpoint {self.checkpoint} was trained with {key}={trained} but the "
                    f"data has {key}={expected}. Measure it on the data set it was trained on."
                )

    @property
    def results_dir(self) -> Path:
        """Where results go (`output_dir`, else the run's log directory); known after setup."""
        return self._run_dirs[0]

    @property
    def _config_is_ours(self) -> bool:
        return self._run_dirs[1]

    @rank_zero_only
    def report(self, records: list[dict]) -> None:
        """Writes the results and the resolved config, prints the table, then draws figures.

        The result files appear in the results directory together or not at all (see
        `staged_run_files`; the run's lock and the checks before compute keep other runs out);
        every record is also logged to the trainer's loggers. Figures come last and are
        best-effort: one that cannot be written (a full disk) is a warning, and the results
        and the printed table stay.
        """
        config = self._resolved_config()
        with staged_run_files(self.results_dir, self._config_is_ours, refuse=False) as stage:
            write_results(stage, records)
            self.write_extra(stage)
            if config is not None and self._config_is_ours:
                (stage / CONFIG_FILE).write_text(config)
        log_records(self._trainer.loggers if self._trainer else [], records)
        self.show(records)
        try:
            self.draw(self.results_dir)
        except Exception as error:  # a figure is never worth the results
            Console(stderr=True, soft_wrap=True).print(
                f"[bold yellow]warning:[/] a figure could not be written into "
                f"{self.results_dir} ({type(error).__name__}: {error}). The results are "
                "complete; redraw the figures from results.json later.",
                highlight=False,
            )

    def show(self, records: list[dict]) -> None:
        """Prints the results (rank 0 only, called by `report`)."""
        Console().print(self.table(records))

    def table(self, records: list[dict]) -> Table:
        """The rich table printed after the run."""
        table = Table(title=type(self).__name__)
        for column in records[0] if records else []:
            table.add_column(column)
        for record in records:
            table.add_row(*[str(value) for value in record.values()])
        return table

    def write_extra(self, directory: Path) -> None:
        """Writes further files of the run beside the results (none by default)."""

    def draw(self, directory: Path) -> None:
        """Draws figures from the written results (none by default)."""

    def _resolved_config(self) -> str | None:
        trainer = self._trainer
        for callback in trainer.callbacks if trainer is not None else []:
            if isinstance(callback, SaveConfigCallback):
                return callback.parser.dump(callback.config, skip_none=False)
        return None


def _plain(value: object) -> object:
    """Tuples and lists compare equal; numbers stay numbers."""
    return list(value) if isinstance(value, (list, tuple)) else value


def check_images(images: torch.Tensor) -> None:
    """Raises unless `images` are float32 (B, C, H, W) in [0, 1]."""
    if images.dtype != torch.float32 or images.dim() != 4:
        raise ValueError(
            f"Expected float32 (B, C, H, W) images, got {images.dtype} {images.shape}."
        )
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError(
            "Images must lie in [0, 1] (normalization is the classifier's first layer); "
            f"got values in [{images.min():.3f}, {images.max():.3f}]."
        )

"""Before any compute: the run directory is writable, free, and resumable or new.

`prepare_run_directory` runs once (rank 0) before the test loop. It checks that the results
directory can be written, takes its lock (`run.lock`: pid and host; a second concurrent run is
refused, a dead holder's lock on this host is taken over), removes the staging folders that a
killed run left, and decides between a fresh run, a resume (the directory holds the store of
an unfinished run with the same config) and a refusal (a finished run, another config, or
files of a run without a store). See docs/evaluation-store.md.
"""

import contextlib
import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

import lightning as L
from lightning.pytorch.callbacks import Callback
from rich.console import Console
from typing_extensions import override

from mixup_robust.evaluation.run_files import RESULT_FILES, run_files_in
from mixup_robust.evaluation.stop_signals import StopSignals
from mixup_robust.evaluation.store import STORE_GLOB, config_differences, read_meta

LOCK_FILE = "run.lock"
STAGING_PREFIX = ".staging-"


class RunLock:
    """The lock file of a run directory: who writes into it (pid, host, since when).

    Args:
        directory: the run directory (it must exist).
        name: the lock file's name; a shard locks its own (`run-shard2of8.lock`), so the
            shards of an array job share the directory.
    """

    def __init__(self, directory: Path, name: str = LOCK_FILE) -> None:
        self.path = directory / name
        self.held = False

    def acquire(self) -> None:
        """Creates the lock file, or raises if a live process holds it.

        A lock whose process is gone (same host, pid not running: a killed run) is taken
        over with a message. A lock from another host cannot be checked and is refused.
        """
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
        for _ in range(2):
            try:
                descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(descriptor, "w") as file:
                json.dump(holder, file)
            self.held = True
            return
        raise FileExistsError(f"Could not take the lock {self.path}.")

    def _take_over_if_stale(self) -> None:
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, ValueError):
            holder = {}
        pid, host = holder.get("pid"), holder.get("host")
        if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
            Console(stderr=True, soft_wrap=True).print(
                f"{self.path.parent}: taking over the lock of process {pid} on {host}, which "
                "is no longer running (a killed run).",
                highlight=False,
            )
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
        raise FileExistsError(
            f"Another run is writing into {self.path.parent}: process {pid} on host {host}, "
            f"since {since} ({self.path}). Two runs must not share a run directory: wait for "
            "it to end, or choose another model.init_args.output_dir. If that process is "
            f"gone (another host's run was killed), delete {self.path}."
        )

    def release(self) -> None:
        """Removes the lock file if this process holds it."""
        if self.held:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.held = False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_writable(directory: Path) -> None:
    """Creates `directory` if needed and raises a clear error unless files can be written."""
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(
            f"The results directory {directory} is a file. Choose a directory for "
            "model.init_args.output_dir."
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".write-check-"):
            pass
    except OSError as error:
        raise PermissionError(
            f"Cannot write into the results directory {directory} ({error.strerror}). Nothing "
            "was computed. Choose a writable model.init_args.output_dir (or "
            "trainer.default_root_dir)."
        ) from None


def remove_leftover_staging(directory: Path) -> None:
    """Removes the staging folders that killed runs left, with a message.

    A staging folder only ever holds files being written at the end of a run; they are
    recomputed from the store, so nothing finished is lost.
    """
    for folder in sorted(directory.glob(f"{STAGING_PREFIX}*")):
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            Console(stderr=True, soft_wrap=True).print(
                f"removed {folder}, the unfinished final writes of a killed run (its results "
                "are rebuilt from the store).",
                highlight=False,
            )


def resumable_stores(directory: Path, config: dict[str, object]) -> list[Path]:
    """The store files of an unfinished run of this config in `directory` (maybe none).

    Raises:
        FileExistsError: the directory holds a finished run (results.json), or store files
            of another config (the differing keys are listed).
    """
    stores = sorted(directory.glob(STORE_GLOB))
    if (directory / RESULT_FILES[0]).exists():
        raise FileExistsError(
            f"{directory} already holds files of an earlier run, finished "
            "(results.json). The results, config and figures of one run are written "
            "together, never mixed with another's: choose another "
            "model.init_args.output_dir (or leave it unset for a fresh log directory), or "
            "move that directory away."
        )
    for path in stores:
        stored = json.loads(read_meta(path).get("config", "{}"))
        differences = config_differences(stored, config)
        if differences:
            raise FileExistsError(
                f"{directory} holds an unfinished run with another config ({path.name}); it "
                "would resume only with the same settings. Differences (stored -> this "
                "command):\n  " + "\n  ".join(differences) + "\nRerun with that run's "
                "settings to finish it, or choose another model.init_args.output_dir."
            )
    return stores


def lock_name(shard: tuple[int, int] | None) -> str:
    """`run.lock`, or a shard's own `run-shard2of8.lock`."""
    return LOCK_FILE if shard is None else f"run-shard{shard[0]}of{shard[1]}.lock"


def prepare_run_directory(
    directory: Path,
    config: dict[str, object],
    config_is_ours: bool,
    shard: tuple[int, int] | None = None,
) -> tuple[RunLock, list[Path]]:
    """Checks, locks and tidies the run directory before compute; returns the lock and stores.

    Args:
        directory: the results directory.
        config: this run's flat config (compared with an unfinished run's).
        config_is_ours: whether a config.yaml there would be another run's (see
            `run_files_in`).
        shard: this run's shard (i, n), or None.
    """
    check_writable(directory)
    lock = RunLock(directory, lock_name(shard))
    lock.acquire()
    try:
        stores = resumable_stores(directory, config)
        if not stores:  # a fresh run: any file of a run is an earlier run's
            found = run_files_in(directory, config_is_ours)
            if found:
                raise FileExistsError(
                    f"{directory} already holds files of an earlier run ({', '.join(found)}). "
                    "The results, config and figures of one run are written together, never "
                    "mixed with another's: choose another model.init_args.output_dir (or "
                    "leave it unset for a fresh log directory), or move that directory away."
                )
        remove_leftover_staging(directory)
    except BaseException:
        lock.release()
        raise
    return lock, stores


@runtime_checkable
class ClosableRun(Protocol):
    """What `RunGuard` needs of a measurement: its signal watch and a way to close its run."""

    stop_signals: StopSignals

    def close_run(self) -> None:
        """Closes the store and releases the run directory's lock."""


class RunGuard(Callback):
    """Listens for stop signals during the test loop; closes the run, also on an error.

    A measurement adds it through `configure_callbacks`: Lightning calls a callback's
    `on_exception` when the run fails or is stopped, where it calls no module hook.
    """

    @override
    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if isinstance(pl_module, ClosableRun):
            pl_module.stop_signals.install(trainer)

    @override
    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._close(pl_module)

    @override
    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._close(pl_module)

    @staticmethod
    def _close(pl_module: L.LightningModule) -> None:
        if isinstance(pl_module, ClosableRun):
            pl_module.stop_signals.remove()
            pl_module.close_run()

"""Trained tiny checkpoints built once per test session and shared read-only by the tests.

Several tests need the same run (mixup on the digits for N epochs, or the first epoch of a
two-epoch run); training it once per session instead of once per test is most of what a shared
run saves. Under pytest-xdist every worker is its own process with its own session fixtures,
so a run is built under the folder all workers share (the parent of each worker's basetemp),
behind a file lock: the first worker to ask builds it, the others wait and read it.

A shared checkpoint is read-only: a test that changes a checkpoint copies it first (resuming
from it with `--ckpt_path` only reads it). `SharedRuns` remembers each checkpoint's hash, and
the session checks at its end that no test wrote into a shared checkpoint.
"""

import fcntl
import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from mixup_robust.data import DigitsDataModule
from tests.helpers.cli import fit_digits

# Where each built run records its checkpoint's path, relative to the run's folder.
MARKER = "checkpoint.txt"


def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder every process of this test session sees: all xdist workers, or the one."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root = root / "shared_runs"
    root.mkdir(exist_ok=True)
    return root


def shared_run(root: Path, name: str, build: Callable[[Path], Path]) -> Path:
    """The checkpoint of run `name`, built by `build(folder)` the first time any process asks.

    The build happens under an exclusive lock on `<root>/<name>.lock`; a build that failed
    leaves no marker, so the next process to ask builds it again in a clean folder.
    """
    folder = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            marker = folder / MARKER
            if not marker.exists():
                shutil.rmtree(folder, ignore_errors=True)
                checkpoint = build(folder)
                marker.write_text(str(checkpoint.relative_to(folder)))
            return folder / marker.read_text()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class SharedRuns:
    """This process's view of the session's shared runs; remembers each checkpoint's hash.

    Args:
        root: the folder of the shared runs (`shared_root`).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.fingerprints: dict[Path, str] = {}

    def get(self, name: str, build: Callable[[Path], Path]) -> Path:
        """The checkpoint of run `name` (built once per session by `build`)."""
        checkpoint = shared_run(self.root, name, build)
        self.fingerprints.setdefault(checkpoint, fingerprint(checkpoint))
        return checkpoint

    def assert_unchanged(self) -> None:
        """Fails if a test wrote into a shared checkpoint (a test that changes one copies it)."""
        changed = [str(p) for p, digest in self.fingerprints.items() if fingerprint(p) != digest]
        assert not changed, f"a test changed shared checkpoints (copy them first): {changed}"


def steps_per_epoch() -> int:
    """Training steps of one epoch of tests/conf/mixup.yaml (batch 64, 10 % held out)."""
    return len(DigitsDataModule(batch_size=64, val_size=0.1).train_dataloader())


def mixup_epochs(epochs: int) -> Callable[[Path], Path]:
    """Builds `fit_digits(folder, "mixup", epochs)`."""
    return lambda folder: fit_digits(folder, "mixup", epochs)


def mixup_first_epoch_of_two(folder: Path) -> Path:
    """A two-epoch mixup run stopped after the first epoch's steps, as a job killed there.

    max_epochs stays 2, so its cosine schedule is the two-epoch one and a resume of it with
    max_epochs 2 is allowed.
    """
    return fit_digits(folder, "mixup", 2, "--trainer.max_steps", steps_per_epoch())


def fingerprint(checkpoint: Path) -> str:
    """The SHA-256 of a checkpoint file."""
    return hashlib.sha256(checkpoint.read_bytes()).hexdigest()

"""Runs killed at random moments (pre-emption, the OOM killer) or signalled by SLURM resume exactly.

Each run is a real subprocess on the digits with a tiny net, killed by SIGKILL in the middle
of a training step, or by the kernel halfway through writing a checkpoint, or sent SLURM's
requeue signal. The checkpoint it leaves must load, and resuming from it must end with the
same weights, bit for bit, as a run that was never interrupted.
"""

import os
import random
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mixup_robust.data import DigitsDataModule
from tests.helpers.cli import CONF, REPO, fit_digits, last_checkpoint

pytestmark = pytest.mark.slow

EPOCHS = 2
CONFIG = CONF / "mixup.yaml"

# Runs `cli.py fit` after arranging its own death: `batch N` SIGKILLs it inside the N-th
# training step; `best E` / `last E` let the kernel kill it (file-size limit, SIGXFSZ) halfway
# through writing the top-k / last checkpoint of epoch E; `signal N` sends it SIGUSR1 (SLURM's
# requeue signal) inside the N-th training step; `full E` leaves no room for the checkpoints
# of epoch E (the file-size limit, with SIGXFSZ ignored: the writes fail).
DRIVER = r"""
import os, resource, signal, sys
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from mixup_robust.cli import main
from mixup_robust.training import LastCheckpoint, Mixup

torch.set_num_threads(1)  # as the tests' own process: identical floating-point results
mode, value = sys.argv[1], int(sys.argv[2])
if mode in ("batch", "signal"):
    calls, original = [0], Mixup.training_loss
    def training_loss(self, *args):
        calls[0] += 1
        if calls[0] == value:
            os.kill(os.getpid(), signal.SIGKILL if mode == "batch" else signal.SIGUSR1)
        return original(self, *args)
    Mixup.training_loss = training_loss
elif mode == "full":  # no room at epoch E: writes past half a checkpoint fail (EFBIG)
    original = ModelCheckpoint._save_topk_checkpoint
    def save(self, trainer, *args):
        if trainer.current_epoch == value:  # SIGXFSZ stays ignored: the write fails instead
            half = int(os.environ["HALF_CHECKPOINT"])
            resource.setrlimit(resource.RLIMIT_FSIZE, (half, half))
        return original(self, trainer, *args)
    ModelCheckpoint._save_topk_checkpoint = save
else:
    best = mode == "best"
    saver = (ModelCheckpoint, "_save_topk_checkpoint") if best else (LastCheckpoint, "save")
    original = getattr(*saver)
    def save(self, trainer, *args):
        if trainer.current_epoch == value:
            half = int(os.environ["HALF_CHECKPOINT"])
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it by default
            resource.setrlimit(resource.RLIMIT_FSIZE, (half, half))
        return original(self, trainer, *args)
    setattr(*saver, save)
main(sys.argv[3:])
"""

SLURM = {
    "SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1", "SLURM_JOB_ID": "4242",
    "SLURM_JOB_NAME": "mixup", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
    "SLURM_NODELIST": "localhost",
}  # fmt: skip


def fit_args(root: Path) -> list[str]:
    return [
        "fit", "--config", str(CONFIG), "--trainer.max_epochs", str(EPOCHS),
        "--trainer.default_root_dir", str(root),
        "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip


def run_killed(mode: str, value: int, root: Path, env: dict | None = None) -> int:
    """Runs the driver; returns its exit status (negative: the signal that ended it)."""
    return run_driver(mode, value, root, env).returncode


def run_driver(
    mode: str, value: int, root: Path, env: dict | None = None
) -> subprocess.CompletedProcess:
    """Runs the driver, which must fail; returns the finished process."""
    command = [sys.executable, "-c", DRIVER, mode, str(value), *fit_args(root)]
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    done = subprocess.run(
        command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0, done.stderr[-2000:]
    return done


@pytest.fixture(scope="module")
def straight(mixup_two_epochs) -> dict:
    """The weights of an uninterrupted run, and the size of its checkpoint files."""
    checkpoint = mixup_two_epochs  # fit_digits(root, "mixup", EPOCHS), built once per session
    return {"state": torch.load(checkpoint, weights_only=True)["state_dict"],
            "size": checkpoint.stat().st_size}  # fmt: skip


def assert_same_weights(expected: dict, checkpoint: Path) -> None:
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert state.keys() == expected.keys()
    for name, value in expected.items():
        assert torch.equal(value, state[name]), name


STEPS = len(DigitsDataModule(batch_size=64, val_size=0.1).train_dataloader())
RANDOM = random.Random(10)  # the kill moments are random, but the same on every run
KILLS = [("batch", STEPS + RANDOM.randrange(1, STEPS)), ("best", 1), ("last", 1)]


@pytest.mark.parametrize(("mode", "value"), KILLS)
def test_a_killed_run_leaves_a_loadable_last_checkpoint_that_resumes_exactly(
    straight, tmp_path, mode, value
):
    status = run_killed(mode, value, tmp_path, {"HALF_CHECKPOINT": str(straight["size"] // 2)})
    assert status < 0  # killed by a signal, not an error
    last = last_checkpoint(tmp_path)
    checkpoint = torch.load(last, weights_only=True)  # whole and loadable
    assert checkpoint["epoch"] == 0 and checkpoint["global_step"] == STEPS
    fit_digits(tmp_path, "mixup", EPOCHS, "--ckpt_path", last)
    assert_same_weights(straight["state"], last_checkpoint(tmp_path))


def test_checkpoints_are_renamed_into_place_with_the_umask_mode(tmp_path):
    previous = os.umask(0o022)
    try:
        checkpoint = fit_digits(tmp_path, "mixup", 1)
    finally:
        os.umask(previous)
    assert stat.S_IMODE(checkpoint.stat().st_mode) == 0o644


def test_slurm_requeue_signal_saves_and_the_requeued_run_continues_exactly(
    straight, tmp_path, monkeypatch
):
    """SIGUSR1 mid-step: an hpc checkpoint after that batch, `scontrol requeue`, then resume."""
    bin_dir, log = tmp_path / "bin", tmp_path / "requeued.txt"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"  # records the requeue, then ends the job as SLURM would
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {log}\nkill -9 $PPID\n')
    scontrol.chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    batch = STEPS + RANDOM.randrange(1, STEPS - 1)
    run_killed("signal", batch, tmp_path / "run", {**SLURM, "PATH": path})
    assert log.read_text().split() == ["requeue", "4242"]
    saved = torch.load(tmp_path / "run" / "hpc_ckpt_1.ckpt", weights_only=True)
    assert saved["global_step"] == batch  # the signalled step finished, then it saved
    last = torch.load(last_checkpoint(tmp_path / "run"), weights_only=True)
    assert (last["epoch"], last["global_step"]) == (1, batch)  # last.ckpt too is that state
    for name, value in SLURM.items():  # the requeued job: same command, no --ckpt_path
        monkeypatch.setenv(name, value)
    # Under SLURM the logger's version is the job id: the requeued job writes into the first
    # start's folder and finds its own config.yaml there, which it accepts.
    fit_digits(tmp_path / "run", "mixup", EPOCHS, "--trainer.enable_progress_bar", "false")
    assert_same_weights(straight["state"], last_checkpoint(tmp_path / "run"))
    # Another command in that job's folder would overwrite the first run's settings: refused.
    with pytest.raises(RuntimeError, match=r"config\.yaml to NOT exist"):
        fit_digits(tmp_path / "run", "mixup", EPOCHS + 1, "--trainer.enable_progress_bar", "false")


# The CLI's checkpoint IO saves a whole checkpoint, then a second one during which the kernel
# kills the process (file-size limit) halfway: inside the final move of Lightning's fsspec
# transaction (a copy when TMPDIR is another file system), or inside whatever the IO writes.
CROSS_FS_DRIVER = r"""
import os, resource, shutil, signal, sys
import torch
from mixup_robust.cli import MixupRobustCLI, trainer_defaults

cli = MixupRobustCLI(
    model_class=None, datamodule_class=None, subclass_mode_model=True,
    subclass_mode_data=True, trainer_defaults=trainer_defaults(), run=False,
    args=["--config", sys.argv[1], "--trainer.logger", "false"],
)
io, path = cli.trainer.strategy.checkpoint_io, sys.argv[2]
io.save_checkpoint({"w": torch.zeros(200_000)}, path)
def limit_writes(*args):
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # Python ignores it by default
    resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, 400_000))
original_move = shutil.move
def move(*args, **kwargs):
    limit_writes()
    return original_move(*args, **kwargs)
shutil.move = move
original_save = torch.save
def save(obj, file, *args, **kwargs):
    if not isinstance(file, __import__("io").BytesIO):
        limit_writes()
    return original_save(obj, file, *args, **kwargs)
torch.save = save
io.save_checkpoint({"w": torch.ones(200_000)}, path)
"""


def test_a_kill_while_a_checkpoint_is_saved_across_file_systems_keeps_the_last_one(tmp_path):
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a temp folder on another file system than the run (/dev/shm)")
    last = tmp_path / "last.ckpt"
    command = [sys.executable, "-c", CROSS_FS_DRIVER, str(CONFIG), str(last)]
    environment = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(shm)}
    done = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, timeout=120)
    assert done.returncode < 0, done.stderr[-2000:]  # killed during the second save
    assert torch.equal(torch.load(last, weights_only=True)["w"], torch.zeros(200_000))


def test_a_full_disk_during_a_save_says_so_in_one_line_and_keeps_the_earlier_checkpoint(
    straight, tmp_path
):
    done = run_driver("full", 1, tmp_path, {"HALF_CHECKPOINT": str(straight["size"] // 2)})
    assert done.returncode == 1
    last = last_checkpoint(tmp_path)
    assert done.stderr.strip().splitlines()[-1].startswith("Out of disk space: the checkpoint ")
    assert f"the earlier checkpoint {last} is intact" in done.stderr
    assert "Traceback" not in done.stderr and "unexpected pos" not in done.stderr
    saved = torch.load(last, weights_only=True)  # whole: the epoch before
    assert (saved["epoch"], saved["global_step"]) == (0, STEPS)
    assert not [p.name for p in last.parent.iterdir() if p.name.startswith(".")]

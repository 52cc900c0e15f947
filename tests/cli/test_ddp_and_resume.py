"""Exactness under DDP (2 CPU processes, gloo); last.ckpt is the last epoch (or the SIGTERM
step), whatever validation did, and a resume from it continues exactly there."""

import json
import os
import signal
import sqlite3
from pathlib import Path

import pytest
import torch
import yaml
from torch.optim.optimizer import register_optimizer_step_post_hook

from mixup_robust.cli import SIGTERM_EXIT_STATUS
from mixup_robust.data import DigitsDataModule
from mixup_robust.training import Mixup
from tests.helpers.cli import (
    CONF,
    fit_digits,
    last_checkpoint,
    resolved_config,
    run_cli_for_devices,
    run_cli_subprocess,
)
from tests.helpers.kills import run_killed

pytestmark = pytest.mark.slow

STEPS = len(DigitsDataModule(batch_size=64, val_size=0.1).train_dataloader())


def evaluation_config(tmp_path: Path, checkpoint: Path) -> Path:
    """The tiny evaluation (tests/conf) without PGD's random start.

    A random start is drawn per batch, and batches differ between 1 and 2 processes; the MI
    draws are keyed per sample and do not depend on the split.
    """
    config = resolved_config("test", CONF / "evaluate.yaml")
    config["model"]["init_args"]["checkpoint"] = str(checkpoint)
    for attack in config["model"]["init_args"]["attacks"]:
        attack["init_args"]["random_start"] = False
    config["data"]["init_args"].update(test_subset_size=150, eval_batch_size=32)
    path = tmp_path / "evaluate.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_ddp_evaluation_counts_every_sample_once(digits_checkpoint, tmp_path):
    config = evaluation_config(tmp_path, digits_checkpoint)
    records = {}
    for devices in (1, 2):
        output = tmp_path / f"devices{devices}"
        run_cli_for_devices(
            "test", "--config", config, "--trainer.default_root_dir", tmp_path / "logs",
            "--trainer.strategy", "ddp" if devices == 2 else "auto",
            "--trainer.devices", devices, "--trainer.accelerator", "cpu",
            "--model.init_args.output_dir", output,
        )  # fmt: skip
        records[devices] = json.loads((output / "results.json").read_text())
    assert [r["n"] for r in records[2]] == [150] * len(records[1])
    for one, two in zip(records[1], records[2], strict=True):
        assert (one["defense"], one["attack"]) == (two["defense"], two["attack"])
        assert one["accuracy"] == pytest.approx(two["accuracy"], abs=1e-9)
        # The exact AUROC gathers every rank's scores: the same value as on one process.
        assert ("auroc" in one) == ("auroc" in two)
        if "auroc" in one:
            assert one["auroc"] == pytest.approx(two["auroc"], abs=1e-6)


def test_ddp_fit_runs_and_writes_a_checkpoint(tmp_path):
    run_cli_subprocess(
        "fit", "--config", CONF / "mixup.yaml",
        "--trainer.max_epochs", 1, "--trainer.default_root_dir", tmp_path,
        "--trainer.strategy", "ddp", "--trainer.devices", 2, "--trainer.accelerator", "cpu",
    )  # fmt: skip
    checkpoint = torch.load(last_checkpoint(tmp_path), weights_only=True)
    assert checkpoint["epoch"] == 0 and checkpoint["global_step"] > 0


def test_resume_continues_exactly(tmp_path, mixup_two_epochs, mixup_first_epoch):
    """2 epochs straight == 1 epoch, interrupted, then resumed from last.ckpt for the second.

    The interrupted run has the same config (max_epochs 2, so the cosine schedule is the same)
    and stops after one epoch's steps, as a job killed at an epoch boundary would.
    """
    straight = mixup_two_epochs  # fit_digits(root, "mixup", 2)
    first_half = mixup_first_epoch  # ... 2, "--trainer.max_steps", STEPS)
    assert torch.load(first_half, weights_only=True)["epoch"] == 0
    assert torch.load(first_half, weights_only=True)["global_step"] == STEPS
    # max_steps differs from the first half's: a resume names the change it accepts.
    resumed = fit_digits(
        tmp_path / "halves", "mixup", 2, "--ckpt_path", first_half,
        "--resume_overrides", "max_steps",
    )  # fmt: skip
    weights = [torch.load(p, weights_only=True)["state_dict"] for p in (straight, resumed)]
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name
    # ... and the resumed run really trained: its weights differ from the first half's.
    half = torch.load(first_half, weights_only=True)["state_dict"]
    assert not torch.equal(half["classifier.1.head.weight"], weights[1]["classifier.1.head.weight"])


def stored_position(checkpoint: Path) -> tuple[int, int]:
    """The (epoch, optimizer step) a checkpoint file records."""
    saved = torch.load(checkpoint, weights_only=True)
    return saved["epoch"], saved["global_step"]


def test_last_checkpoint_is_the_final_epoch_when_validation_never_improves(tmp_path):
    """lr 0: val/acc never beats epoch 0's, so only epoch 0 is a "best" checkpoint."""
    last = fit_digits(tmp_path, "erm", 3, "--model.init_args.optimizer.init_args.lr", 0)
    assert stored_position(last) == (2, 3 * STEPS)
    assert [path.name for path in last.parent.glob("best-*.ckpt")] == [
        f"best-epoch=0-step={STEPS}.ckpt"
    ]


@pytest.fixture
def optimizer_steps():
    """Counts every optimizer step taken in this process (torch's global post-step hook)."""
    steps = [0]

    def count(optimizer, args, kwargs):
        steps[0] += 1

    handle = register_optimizer_step_post_hook(count)
    yield steps
    handle.remove()


def test_a_resume_after_sigterm_continues_in_that_epoch_with_no_step_twice(
    tmp_path, monkeypatch, optimizer_steps
):
    straight = fit_digits(tmp_path / "straight", "mixup", 2)
    straight_steps, optimizer_steps[0] = optimizer_steps[0], 0
    assert straight_steps == 2 * STEPS

    kill_at = STEPS + 3  # SIGTERM arrives during the 4th training step of epoch 1
    calls, original = [0], Mixup.training_loss

    def training_loss(self, *args):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, *args)

    with monkeypatch.context() as patch:
        patch.setattr(Mixup, "training_loss", training_loss)
        with pytest.raises(SystemExit) as stopped:
            fit_digits(tmp_path / "halves", "mixup", 2)
    assert stopped.value.code == SIGTERM_EXIT_STATUS
    first_steps, optimizer_steps[0] = optimizer_steps[0], 0
    last = last_checkpoint(tmp_path / "halves")
    assert stored_position(last) == (1, kill_at)  # that step finished, then it saved
    assert first_steps == kill_at

    resumed = fit_digits(tmp_path / "halves", "mixup", 2, "--ckpt_path", last)
    assert first_steps + optimizer_steps[0] == straight_steps  # no step trained twice
    assert stored_position(resumed) == (1, 2 * STEPS)
    weights = [torch.load(p, weights_only=True)["state_dict"] for p in (straight, resumed)]
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name


def test_a_ddp_evaluation_stopped_by_a_signal_resumes_to_one_processs_results(
    digits_checkpoint, tmp_path
):
    """Both ranks get SLURM's warning signal mid-run (as srun sends it to every task)."""
    stopped = stop_ddp_then_resume(digits_checkpoint, tmp_path, "SIGUSR1")
    assert stopped.returncode == SIGTERM_EXIT_STATUS, stopped.stderr[-3000:]


def test_a_killed_ddp_evaluation_resumes_to_one_processs_results(digits_checkpoint, tmp_path):
    """Both ranks SIGKILLed mid-run (a job killed without warning), then the same command."""
    killed = stop_ddp_then_resume(digits_checkpoint, tmp_path, "SIGKILL")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]


def stop_ddp_then_resume(checkpoint: Path, tmp_path: Path, signum: str):
    """A 2-rank evaluation, each rank sent `signum` at its 10th defense call, then rerun.

    Checks that the stopped run kept each rank's finished units and wrote no results, and that
    the rerun equals one process's results with every sample stored once and the kept rows
    unchanged. Returns the stopped run's process for its exit status.
    """
    config = evaluation_config(tmp_path, checkpoint)
    one = tmp_path / "one"
    run_cli_subprocess("test", "--config", config, "--trainer.default_root_dir", tmp_path / "l1",
                       "--model.init_args.output_dir", one)  # fmt: skip
    output = tmp_path / "two"
    args = ("test", "--config", config, "--trainer.default_root_dir", tmp_path / "l2",
            "--trainer.strategy", "ddp", "--trainer.devices", 2, "--trainer.accelerator", "cpu",
            "--model.init_args.output_dir", output)  # fmt: skip
    stopped = run_killed(10, tmp_path / "ledger", *args, signum=signum)
    assert not (output / "results.json").exists()
    kept = {rank: rows(output / f"samples-rank{rank}.sqlite") for rank in (0, 1)}
    assert all(0 < len(kept[rank]) for rank in (0, 1))  # each rank kept its finished units
    run_cli_subprocess(*args)
    records = {n: json.loads((d / "results.json").read_text()) for n, d in ((1, one), (2, output))}
    for first, second in zip(records[1], records[2], strict=True):
        assert (first["n"], first["defense"], first["attack"]) == (
            second["n"], second["defense"], second["attack"])  # fmt: skip
        assert first["accuracy"] == pytest.approx(second["accuracy"], abs=1e-9)
    resumed = [row for rank in (0, 1) for row in rows(output / f"samples-rank{rank}.sqlite")]
    assert len(resumed) == len(set(resumed)) == len(rows(one / "samples-rank0.sqlite"))
    for rank in (0, 1):  # the rows kept at the stop are still there, unchanged
        assert set(kept[rank]) <= set(rows(output / f"samples-rank{rank}.sqlite"))
    return stopped


def rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as connection:
        return connection.execute(
            "SELECT sample, trial, defense, attack, correct, prediction FROM samples"
        ).fetchall()

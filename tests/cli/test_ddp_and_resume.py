"""Exactness under DDP (2 CPU processes, gloo) and exact resume from last.ckpt."""

import json
from pathlib import Path

import pytest
import torch
import yaml

from mixup_robust.data import DigitsDataModule
from tests.helpers.cli import (
    CONF,
    fit_digits,
    last_checkpoint,
    resolved_config,
    run_cli_for_devices,
    run_cli_subprocess,
)

pytestmark = pytest.mark.slow


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
    steps_per_epoch = len(DigitsDataModule(batch_size=64, val_size=0.1).train_dataloader())
    straight = mixup_two_epochs  # fit_digits(root, "mixup", 2)
    first_half = mixup_first_epoch  # ... 2, "--trainer.max_steps", steps_per_epoch)
    assert torch.load(first_half, weights_only=True)["epoch"] == 0
    assert torch.load(first_half, weights_only=True)["global_step"] == steps_per_epoch
    resumed = fit_digits(tmp_path / "halves", "mixup", 2, "--ckpt_path", first_half)
    weights = [torch.load(p, weights_only=True)["state_dict"] for p in (straight, resumed)]
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name
    # ... and the resumed run really trained: its weights differ from the first half's.
    half = torch.load(first_half, weights_only=True)["state_dict"]
    assert not torch.equal(half["classifier.1.head.weight"], weights[1]["classifier.1.head.weight"])

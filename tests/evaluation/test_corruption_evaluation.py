"""The common-corruption evaluation: mean accuracy per corruption, through the CLI and under DDP."""

import json

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn

from mixup_robust.data import CorruptionDataModule
from mixup_robust.evaluation import CorruptionEvaluation
from tests.helpers.cli import REPO, run_cli, run_cli_for_devices
from tests.helpers.corruptions import CORRUPTIONS, N, correctness, fake_cifar_c


class PixelReader(nn.Module):
    """Predicts class (first pixel x 255) mod 10."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        classes = (images[:, 0, 0, 0] * 255).round().long() % 10
        return nn.functional.one_hot(classes, 10).float()


def test_mean_accuracy_matches_a_hand_computation(tmp_path):
    root = fake_cifar_c(tmp_path / "CIFAR-10-C")
    data = CorruptionDataModule(str(root), image_shape=(3, 4, 4), eval_batch_size=3)
    evaluation = CorruptionEvaluation("unused.ckpt", output_dir=str(tmp_path / "out"))
    evaluation.classifier = PixelReader().eval()
    trainer = L.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
        enable_model_summary=False, inference_mode=False,
    )  # fmt: skip
    trainer.test(evaluation, datamodule=data, verbose=False)
    records = json.loads((tmp_path / "out" / "results.json").read_text())
    accuracy = {(r["corruption"], r["severity"]): r["accuracy"] for r in records}
    assert len(records) == 2 * 5 + 2 + 1
    for name in CORRUPTIONS:
        right = correctness(name)
        for severity in range(1, 6):
            assert accuracy[(name, severity)] == pytest.approx(right[severity - 1].mean())
        assert accuracy[(name, "mean")] == pytest.approx(right.mean())
    overall = np.mean([correctness(name).mean() for name in CORRUPTIONS])
    assert accuracy[("mean", "mean")] == pytest.approx(overall)
    assert {r["n"] for r in records if r["severity"] != "mean"} == {N}
    assert records[-1]["n"] == 2 * 5 * N


def test_cli_scores_the_digits_model_on_fake_corruptions(digits_checkpoint, tmp_path):
    root = fake_cifar_c(tmp_path / "fake-C", shape=(1, 8, 8))
    output = tmp_path / "results"
    run_cli(
        "test", "--config", REPO / "configs" / "eval" / "cifar10_corruptions.yaml",
        "--model.init_args.checkpoint", digits_checkpoint,
        "--model.init_args.output_dir", output,
        "--trainer.accelerator", "cpu",
        "--trainer.default_root_dir", tmp_path / "logs",
        "--data.init_args.root", root,
        "--data.init_args.image_shape", "[1, 8, 8]",
        "--data.init_args.corruptions", "[snow, gaussian_noise]",
        "--data.init_args.severities", "[1, 5]",
    )  # fmt: skip
    records = json.loads((output / "results.json").read_text())
    assert [(r["corruption"], r["severity"]) for r in records] == [
        ("snow", 1), ("snow", 5), ("gaussian_noise", 1), ("gaussian_noise", 5),
        ("snow", "mean"), ("gaussian_noise", "mean"), ("mean", "mean"),
    ]  # fmt: skip
    assert all(0 <= r["accuracy"] <= 1 for r in records)
    assert (output / "results.csv").read_text().startswith("measure,corruption,severity,n")
    with pytest.raises(ValueError, match="image_shape"):
        run_cli(
            "test", "--config", REPO / "configs" / "eval" / "cifar10_corruptions.yaml",
            "--model.init_args.checkpoint", digits_checkpoint,
            "--model.init_args.output_dir", tmp_path / "other",
            "--trainer.accelerator", "cpu",
            "--trainer.default_root_dir", tmp_path / "logs",
            "--data.init_args.root", root,
        )  # fmt: skip


@pytest.mark.slow
def test_ddp_counts_every_corrupted_image_once(digits_checkpoint, tmp_path):
    root = fake_cifar_c(tmp_path / "fake-C", shape=(1, 8, 8))
    records = {}
    for devices in (1, 2):
        output = tmp_path / f"devices{devices}"
        run_cli_for_devices(
            "test", "--config", REPO / "configs" / "eval" / "cifar10_corruptions.yaml",
            "--trainer.default_root_dir", tmp_path / "logs",
            "--trainer.strategy", "ddp" if devices == 2 else "auto",
            "--trainer.devices", devices, "--trainer.accelerator", "cpu",
            "--model.init_args.checkpoint", digits_checkpoint,
            "--model.init_args.output_dir", output,
            "--data.init_args.root", root, "--data.init_args.image_shape", "[1, 8, 8]",
            "--data.init_args.corruptions", "[snow, gaussian_noise]",
            "--data.init_args.eval_batch_size", 3,
        )  # fmt: skip
        records[devices] = json.loads((output / "results.json").read_text())
    assert records[1] == records[2]
    assert records[2][-1]["n"] == 2 * 5 * N

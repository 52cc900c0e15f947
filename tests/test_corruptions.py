"""Common-corruption data (CIFAR-10-C and Tiny-ImageNet-C layouts) and their evaluation."""

import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from mixup_robust.data import CorruptionDataModule, list_corruptions, load_corruption
from mixup_robust.evaluation import CorruptionEvaluation
from tests.conftest import REPO, run_cli
from tests.test_ddp_and_resume import cli

N = 4  # images per severity
CORRUPTIONS = ("snow", "gaussian_noise")  # listed back in benchmark order
LABELS = np.array([(i + s) % 10 for s in range(5) for i in range(N)], dtype=np.int64)


def correctness(corruption: str) -> np.ndarray:
    """Which images (5, N) the pixel-reading classifier below gets right, fixed per corruption."""
    rng = np.random.default_rng(len(corruption))
    return rng.random((5, N)) < 0.6


def fake_cifar_c(root: Path, shape: tuple[int, int, int] = (3, 4, 4)) -> Path:
    """Images whose every pixel is the label (right) or label + 1 (wrong), plus a marker."""
    root.mkdir(parents=True)
    channels, height, width = shape
    np.save(root / "labels.npy", LABELS.astype(np.uint8))  # CIFAR-10-C ships uint8 labels
    for number, name in enumerate(CORRUPTIONS):
        value = LABELS + ~correctness(name).reshape(-1) + 20 * number
        images = np.broadcast_to(value[:, None, None, None], (5 * N, height, width, channels))
        np.save(root / f"{name}.npy", np.ascontiguousarray(images).astype(np.uint8))
    return root


class PixelReader(nn.Module):
    """Predicts class (first pixel x 255) mod 10."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        classes = (images[:, 0, 0, 0] * 255).round().long() % 10
        return nn.functional.one_hot(classes, 10).float()


def test_the_loader_reads_each_severity_slice_and_its_labels(tmp_path):
    root = fake_cifar_c(tmp_path / "CIFAR-10-C")
    assert list_corruptions(root) == ["gaussian_noise", "snow"]
    for severity in (1, 3, 5):
        images, labels = load_corruption(root, "snow", severity, (3, 4, 4))
        rows = slice((severity - 1) * N, severity * N)
        assert images.dtype == torch.uint8 and images.shape == (N, 3, 4, 4)
        assert labels.dtype == torch.int64 and labels.tolist() == LABELS[rows].tolist()
        expected = LABELS[rows] + ~correctness("snow")[severity - 1]
        assert images[:, :, 1, 2].tolist() == [[int(v)] * 3 for v in expected]


def test_missing_files_and_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="labels.npy"):
        list_corruptions(tmp_path / "absent")
    root = fake_cifar_c(tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="fog.npy"):
        load_corruption(root, "fog", 1, (3, 4, 4))
    with pytest.raises(ValueError, match="severities are 1 to 5"):
        load_corruption(root, "snow", 6, (3, 4, 4))
    with pytest.raises(ValueError, match="expected"):
        load_corruption(root, "snow", 1, (3, 32, 32))
    (root / "labels.npy").unlink()
    with pytest.raises(FileNotFoundError, match="labels.npy"):
        load_corruption(root, "snow", 1, (3, 4, 4))


def test_the_folder_layout_of_tiny_imagenet_c(tmp_path):
    wnids = ["n01443537", "n01629819", "n01641577"]
    for severity in (1, 2):
        for label, wnid in enumerate(wnids):
            folder = tmp_path / "fog" / str(severity) / wnid
            folder.mkdir(parents=True)
            for copy in range(2):
                value = 40 * label + 10 * severity + copy
                image = Image.new("RGB", (8, 8), (value, value, value))
                image.save(folder / f"val_{copy}.JPEG", quality=100)
    assert list_corruptions(tmp_path) == ["fog"]
    images, labels = load_corruption(tmp_path, "fog", 2, (3, 8, 8))
    assert labels.tolist() == [0, 0, 1, 1, 2, 2]
    expected = torch.tensor([40 * (i // 2) + 20 + i % 2 for i in range(6)])
    assert (images[:, 0, 3, 3].long() - expected).abs().max() <= 2


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
        cli(
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

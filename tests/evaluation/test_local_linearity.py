"""Local linearity error: zero for a linear loss, positive for a network, via the CLI."""

import json

import pytest
import torch
from torch import nn

from mixup_robust.attacks import project_offset
from mixup_robust.evaluation import LocalLinearityEvaluation, local_linearity_error
from tests.helpers.cli import CONF, measure_digits, run_cli_for_devices

CONFIG = CONF / "evaluate_local_linearity.yaml"


def _images(batch: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 1, 8, 8, generator=generator)
    images[0] = 0.0  # a corner of the box: the projection onto [0, 1] must matter
    images[1] = 1.0
    return images, torch.randint(0, 10, (batch,), generator=generator)


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 10)
    ).eval()


def test_a_loss_linear_in_the_input_has_zero_error():
    images, labels = _images()
    linear = nn.Sequential(nn.Flatten(), nn.Linear(64, 1)).double()
    errors = local_linearity_error(
        linear, images.double(), labels, eps=0.3, steps=5,
        generator=torch.Generator().manual_seed(1), loss_fn=lambda out, _: out[:, 0],
    )  # fmt: skip
    assert errors.shape == (6,) and errors.abs().max() < 1e-6


def test_cross_entropy_of_a_network_is_not_linear_and_grows_with_eps():
    images, labels = _images()
    model = _cnn()
    errors = [
        local_linearity_error(
            model, images, labels, eps, steps=10, generator=torch.Generator().manual_seed(0)
        ).mean()
        for eps in (0.0, 2 / 255, 8 / 255, 32 / 255)
    ]
    assert errors[0] == 0 and errors[1] > 0
    assert errors[1] <= errors[2] <= errors[3]


def test_pgd_beats_the_random_start_and_ignores_parameter_gradients():
    images, labels = _images()
    model = _cnn()
    start = torch.rand(images.shape, generator=torch.Generator().manual_seed(3)) * 2 - 1
    only_start = local_linearity_error(model, images, labels, 0.1, steps=0, start=start)
    maximized = local_linearity_error(model, images, labels, 0.1, steps=10, start=start)
    assert (maximized >= only_start).all() and maximized.mean() > only_start.mean()
    assert all(p.grad is None for p in model.parameters())


def test_projection_keeps_the_ball_and_the_pixel_range():
    images, _ = _images()
    delta = project_offset(images, torch.randn(images.shape), 0.05) - images
    assert delta.abs().max() <= 0.05 + 1e-7
    assert (images + delta).min() >= 0 and (images + delta).max() <= 1


def test_eps_are_parsed_and_checked():
    evaluation = LocalLinearityEvaluation("x.ckpt", eps=["8/255", 0.1], steps=4)
    assert evaluation.eps == [pytest.approx(8 / 255), 0.1]
    assert evaluation.relative_step_size == pytest.approx(2.5 / 4)
    with pytest.raises(ValueError, match="pixel units"):
        LocalLinearityEvaluation("x.ckpt", eps=[8])
    with pytest.raises(ValueError, match="empty"):
        LocalLinearityEvaluation("x.ckpt", eps=[])


def measure(checkpoint, output, batch_size: int) -> list[dict]:
    return measure_digits(
        CONFIG, checkpoint, output, "--model.init_args.steps", 3,
        "--data.init_args.test_subset_size", 50, "--data.init_args.eval_batch_size", batch_size,
    )  # fmt: skip


def test_cli_writes_one_record_per_eps_and_a_plot(digits_checkpoint, tmp_path):
    output = tmp_path / "results"
    records = measure(digits_checkpoint, output, 16)
    assert [r["eps"] for r in records] == pytest.approx([8 / 255, 16 / 255, 32 / 255])
    for record in records:
        assert record["measure"] == "local_linearity" and record["n"] == 50
        assert record["value"] > 0 and record["checkpoint"] == str(digits_checkpoint)
    assert records[0]["value"] < records[-1]["value"]
    assert (output / "local_linearity.png").stat().st_size > 3000
    assert (output / "results.csv").read_text().startswith("measure,eps,n,value")
    # Random starts are keyed on sample indices: another batch size gives the same numbers.
    again = measure(digits_checkpoint, tmp_path / "again", 50)
    assert [r["value"] for r in again] == pytest.approx([r["value"] for r in records], rel=1e-5)
    with pytest.raises(FileExistsError, match="earlier run"):
        measure(digits_checkpoint, output, 16)


@pytest.mark.slow
def test_ddp_gives_the_numbers_of_one_process(digits_checkpoint, tmp_path):
    records = {}
    for devices in (1, 2):
        output = tmp_path / f"devices{devices}"
        run_cli_for_devices(
            "test", "--config", CONFIG, "--trainer.default_root_dir", tmp_path / "logs",
            "--trainer.strategy", "ddp" if devices == 2 else "auto",
            "--trainer.devices", devices, "--trainer.accelerator", "cpu",
            "--model.init_args.checkpoint", digits_checkpoint,
            "--model.init_args.output_dir", output, "--model.init_args.steps", 2,
            "--data.init_args.test_subset_size", 45, "--data.init_args.eval_batch_size", 8,
        )  # fmt: skip
        records[devices] = json.loads((output / "results.json").read_text())
    assert [r["n"] for r in records[2]] == [45] * 3
    for one, two in zip(records[1], records[2], strict=True):
        assert one["value"] == pytest.approx(two["value"], rel=1e-5)

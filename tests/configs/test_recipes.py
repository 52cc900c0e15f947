"""The fast (GPU) and CPU-scale CIFAR-10 recipes: they parse, train a few steps, evaluate."""

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.helpers.cli import REPO, last_checkpoint, resolved_config, run_cli

FAST = REPO / "configs" / "cifar10_fast"
CPU = REPO / "configs" / "cifar10_cpu"
CPU_EVALUATION = REPO / "configs" / "eval" / "cifar10_cpu_mixup_inference.yaml"
CLASSES = [f"class{i}" for i in range(10)]


def fake_cifar_zip(path: Path, train_per_class: int = 12, test_per_class: int = 3) -> Path:
    """A cifar10-jpeg.zip look-alike: 32x32 PNGs under top/{train,test}/<class>/."""
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as archive:
        for split, count in (("train", train_per_class), ("test", test_per_class)):
            for label, name in enumerate(CLASSES):
                for number in range(count):
                    pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                    pixels[..., label % 3] //= 4  # a little class signal
                    buffer = io.BytesIO()
                    Image.fromarray(pixels).save(buffer, format="PNG")
                    archive.writestr(f"top/{split}/{name}/{number:04d}.png", buffer.getvalue())
    return path


def parses(subcommand: str, config: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(subcommand, "--config", config, "--print_config")
    assert exit_info.value.code in (0, None)


@pytest.mark.parametrize(
    "config", sorted(FAST.glob("*.yaml")) + sorted(CPU.glob("*.yaml")), ids=lambda p: p.name
)
def test_recipe_configs_parse(config):
    parses("test" if config.name.startswith("evaluate") else "fit", config)


def test_recipes_use_the_fast_path_settings():
    for method in ("erm", "mixup", "iat"):
        fast = (FAST / f"{method}.yaml").read_text()
        for setting in ("precision: bf16-mixed", "channels_last: true", "compile: true",
                        "OneCycleSchedule", "scheduler_interval: step", "FastCNN"):  # fmt: skip
            assert setting in fast, (method, setting)
        cpu = (CPU / f"{method}.yaml").read_text()
        assert "OneCycleSchedule" in cpu and "scheduler_interval: step" in cpu
        assert "PlainCNN" in cpu
        # The data blocks are includes of configs/data/: read as the CLI resolves them.
        fast_data = resolved_config("fit", FAST / f"{method}.yaml")["data"]["init_args"]
        cpu_data = resolved_config("fit", CPU / f"{method}.yaml")["data"]["init_args"]
        assert fast_data["device_resident"] is True
        assert cpu_data["root"].endswith("cifar10-jpeg.zip")


def fit_briefly(config: Path, root: Path, data: Path, *extra) -> Path:
    run_cli(
        "fit", "--config", config, "--trainer.max_steps", 3, "--trainer.default_root_dir", root,
        "--trainer.limit_val_batches", 1, "--data.init_args.root", data,
        "--data.init_args.batch_size", 16, "--data.init_args.val_size", 20, *extra,
    )  # fmt: skip
    return last_checkpoint(root)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["erm", "mixup", "iat"])
def test_cpu_recipe_trains_and_its_evaluation_scores_every_defense(method, tmp_path):
    data = fake_cifar_zip(tmp_path / "cifar.zip")
    checkpoint = fit_briefly(CPU / f"{method}.yaml", tmp_path / "fit", data)
    state = torch.load(checkpoint, weights_only=True)
    assert state["global_step"] == 3
    assert state["lr_schedulers"][0]["last_epoch"] == 3  # stepped every optimizer step
    output = tmp_path / "results"
    run_cli(
        "test", "--config", CPU_EVALUATION, "--model.init_args.checkpoint", checkpoint,
        "--model.init_args.output_dir", output, "--trainer.default_root_dir", tmp_path / "eval",
        "--data.init_args.root", data, "--data.init_args.test_subset_size", 8,
        "--data.init_args.pool_size_per_class", 5,
    )  # fmt: skip
    records = json.loads((output / "results.json").read_text())
    assert {r["defense"] for r in records} == {"none", "MI-PL", "MI-OL", "MI-Combined"}
    assert {r["attack"] for r in records} == {"clean", "PGD-10"}
    assert all(r["n"] == 8 for r in records)


@pytest.mark.slow
def test_fast_recipe_runs_on_cpu_with_its_gpu_options(tmp_path):
    """bf16-mixed, channels_last, compile (eager backend: no C++ build) and device_resident."""
    data = fake_cifar_zip(tmp_path / "cifar.zip")
    checkpoint = fit_briefly(
        FAST / "mixup.yaml", tmp_path / "fit", data,
        "--data", "mixup_robust.data.ImageFolderDataModule",
        "--trainer.accelerator", "cpu", "--model.init_args.compile_backend", "eager",
        "--model.init_args.net.init_args.widths", "[8, 8, 16, 16]",
    )  # fmt: skip
    state = torch.load(checkpoint, weights_only=True)
    assert state["global_step"] == 3
    assert state["hyper_parameters"]["channels_last"] and state["hyper_parameters"]["compile"]
    assert all(not key.startswith("classifier._orig_mod") for key in state["state_dict"])
    resolved = (checkpoint.parents[1] / "config.yaml").read_text()  # the run's saved config
    assert "device_resident: true" in resolved and "ImageFolderDataModule" in resolved


def run_script(script: str, tmp_path: Path, env: dict[str, str], *args) -> str:
    """Runs a recipe script on the fake zip (one method, a few steps); returns its output."""
    environment = {
        **os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(REPO), "METHODS": "mixup",
        "RUNS": str(tmp_path / "runs"), **env,
    }  # fmt: skip
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / script), *map(str, args)],
        env=environment, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def results_of(tmp_path: Path, folder: str) -> list[dict]:
    found = sorted((tmp_path / "runs" / folder).glob("lightning_logs/version_*/results.json"))
    assert len(found) == 1
    return json.loads(found[0].read_text())


@pytest.mark.slow(seconds=30)
def test_scripts_train_and_evaluate_end_to_end(tmp_path):
    data = fake_cifar_zip(tmp_path / "cifar.zip")
    brief = "--trainer.max_steps 3 --trainer.limit_val_batches 1 --data.init_args.batch_size 16"
    small = ("--data.init_args.test_subset_size", 8, "--data.init_args.pool_size_per_class", 5,
             "--data.init_args.val_size", 20)  # fmt: skip
    output = run_script(
        "cifar10_cpu.sh", tmp_path, {"FIT_ARGS": brief}, "--data.init_args.root", data, *small
    )
    assert "[cifar10_cpu] fit mixup:" in output and "[cifar10_cpu] evaluate mixup:" in output
    cpu = results_of(tmp_path, "cifar10_cpu/evaluate-mixup")
    assert {r["defense"] for r in cpu} == {"none", "MI-PL", "MI-OL", "MI-Combined"}
    fast_fit = (
        f"{brief} --model.init_args.compile_backend eager --trainer.accelerator cpu "
        "--model.init_args.net.init_args.widths [8,8,16,16]"
    )
    run_script(
        "cifar10_fast_table2.sh", tmp_path,
        {"ZIP": str(data), "FIT_ARGS": fast_fit, "EVAL_ARGS": "--trainer.accelerator cpu"},
        "--seed_everything", 0, *small,
    )  # fmt: skip
    fast = results_of(tmp_path, "cifar10_fast/evaluate-mixup")
    assert {r["defense"] for r in fast} == {"none", "MI-OL", "MI-Combined"}
    assert {r["attack"] for r in fast} == {"clean", "PGD-10"}

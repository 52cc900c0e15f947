"""A walk through bad inputs: each run fails before any compute, with the project's message,
and leaves every file already on disk as it was."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mixup_robust.evaluation import DefenseEvaluation
from mixup_robust.evaluation.plots import main as plots_main
from mixup_robust.training import ClassifierModule
from tests.helpers.cli import CONF, run_cli

FIT = ["fit", "--config", CONF / "mixup.yaml"]
TEST = ["test", "--config", CONF / "evaluate.yaml"]
PREDICT = ["predict", "--config", CONF / "evaluate.yaml"]
MI_OL = '{"class_path": "mixup_robust.defenses.MixupInference", "init_args": {"mixup_ratio": 0.5}}'


def image_folder(root: Path, classes: int, size: int) -> Path:
    """train/ and test/ class folders of random grayscale PNGs."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label in range(classes):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True)
            for number in range(4):
                pixels = rng.integers(0, 256, (size, size), dtype=np.uint8)
                Image.fromarray(pixels, mode="L").save(folder / f"{number}.png")
    return root


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, mixup_one_epoch) -> Path:
    """Files a careless or hostile user might point a run at, and an earlier run's results."""
    root = tmp_path_factory.mktemp("workspace")
    good = mixup_one_epoch  # fit_digits(root / "train", "mixup", 1), built once per session
    shutil.copy(good, root / "good.ckpt")
    (root / "notes.ckpt").write_text("epoch 3: loss 0.12\n")
    contents = torch.load(good, weights_only=True)
    contents["state_dict"] = {
        k: v.float() * float("nan") for k, v in contents["state_dict"].items()
    }
    torch.save(contents, root / "nan.ckpt")
    torch.save(
        {"hyper_parameters": {"_class_path": "mixup_robust.training.MMDVAE", "latent_dim": 8},
         "state_dict": {"vae.encoder.weight": torch.zeros(2)}},
        root / "vae.ckpt",
    )  # fmt: skip
    torch.save(torch.nn.Linear(64, 10).state_dict(), root / "plain_state_dict.pt")
    shutil.make_archive(str(root / "images"), "zip", image_folder(root / "folder3", 3, 8))
    zipped = root / "images.zip"
    zipped.write_bytes(zipped.read_bytes()[: zipped.stat().st_size // 2])
    image_folder(root / "folder_16px", 10, 16)
    earlier = root / "earlier"
    earlier.mkdir()
    (earlier / "results.json").write_text(json.dumps([{"defense": "none", "attack": "clean"}]))
    (earlier / "config.yaml").write_text("model: earlier\n")
    (root / "config_only").mkdir()
    (root / "config_only" / "config.yaml").write_text("model: earlier\n")
    (earlier / "predictions.csv").write_text("index,label\n")
    (root / "empty.json").write_text("[]")
    return root


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def cases(w: str) -> list[tuple[str, list, type, str]]:
    """(name, arguments, error, message) with `{w}` standing for the workspace folder."""
    ckpt = "--model.init_args.checkpoint"
    out = "--model.init_args.output_dir"
    folder = "--data.class_path mixup_robust.data.ImageFolderDataModule --data.init_args.root"
    return [
        ("mixup ratio above 1", [*TEST, ckpt, f"{w}/good.ckpt", "--model.init_args.defenses",
         '[{"class_path": "mixup_robust.defenses.MixupInference", "init_args": '
         '{"mixup_ratio": 1.5}}]'], ValueError, r"mixup_ratio=1.5 must lie in \[0, 1\]"),
        ("negative eps", [*TEST, ckpt, f"{w}/good.ckpt", "--model.init_args.attacks",
         '[{"class_path": "mixup_robust.attacks.PGD", "init_args": {"eps": -0.1}}]'],
         ValueError, "eps=-0.1 is -0.1000 in pixel units"),
        ("swept ratio above 1", [*TEST, ckpt, f"{w}/good.ckpt", "--model.init_args.sweeps",
         f'[{{"defense": {MI_OL}, "parameter": "mixup_ratio", "values": [0.5, 1.5]}}]'],
         ValueError, "invalid value 1.5"),
        ("swept n_executions 0", [*TEST, ckpt, f"{w}/good.ckpt", "--model.init_args.sweeps",
         f'[{{"defense": {MI_OL}, "parameter": "n_executions", "values": [0]}}]'],
         ValueError, "invalid value 0.*at least 1"),
        ("alpha 0", [*FIT, "--model.init_args.alpha", "0"], ValueError, "alpha > 0"),
        ("batch size 0", [*FIT, "--data.init_args.batch_size", "0"], ValueError,
         "batch_size and eval_batch_size must be at least 1"),
        ("missing data", [*FIT, *folder.split(), f"{w}/no_such_folder"], FileNotFoundError,
         "no_such_folder does not exist"),
        ("truncated zip", [*FIT, *folder.split(), f"{w}/images.zip"], ValueError,
         "damaged or truncated"),
        ("missing checkpoint", [*TEST, ckpt, f"{w}/missing.ckpt"], FileNotFoundError,
         "No checkpoint at"),
        ("text as checkpoint", [*TEST, ckpt, f"{w}/notes.ckpt"], ValueError,
         "is not a checkpoint"),
        ("non-finite weights", [*TEST, ckpt, f"{w}/nan.ckpt"], ValueError,
         "non-finite weights"),
        ("a VAE checkpoint", [*TEST, ckpt, f"{w}/vae.ckpt"], ValueError,
         "not a mixup_robust classifier checkpoint"),
        ("a bare state dict", [*TEST, ckpt, f"{w}/plain_state_dict.pt"], ValueError,
         "not a mixup_robust classifier checkpoint"),
        ("wrong class count", [*TEST, ckpt, f"{w}/good.ckpt", *folder.split(),
         f"{w}/folder3", "--data.init_args.channels", "1"], ValueError,
         "num_classes=10 but the data has num_classes=3"),
        ("wrong image shape", [*TEST, ckpt, f"{w}/good.ckpt", *folder.split(),
         f"{w}/folder_16px", "--data.init_args.channels", "1"], ValueError,
         r"image_shape=\(1, 8, 8\) but the data has image_shape=\(1, 16, 16\)"),
        ("results already there", [*TEST, ckpt, f"{w}/good.ckpt", out, f"{w}/earlier"],
         FileExistsError, "already holds files of an earlier run"),
        ("an old config there", [*TEST, ckpt, f"{w}/good.ckpt", out, f"{w}/config_only"],
         FileExistsError, "config.yaml"),
        ("predictions already there", [*PREDICT, ckpt, f"{w}/good.ckpt", out, f"{w}/earlier"],
         FileExistsError, "earlier run's predictions"),
        ("a longer cosine", [*FIT, "--trainer.max_epochs", "3", "--ckpt_path",
         f"{w}/good.ckpt"], ValueError, "max_epochs=1, but this run has max_epochs=3"),
    ]  # fmt: skip


NAMES = [case[0] for case in cases("w")]


@pytest.fixture
def no_compute(monkeypatch):
    """Any training, test or predict step fails the test: errors must come before compute."""

    def compute(*args, **kwargs):
        raise AssertionError("compute started before the bad input was refused")

    for cls, step in ((ClassifierModule, "training_step"), (DefenseEvaluation, "test_step"),
                      (DefenseEvaluation, "predict_step")):  # fmt: skip
        monkeypatch.setattr(cls, step, compute)


@pytest.mark.parametrize("name", NAMES)
def test_a_bad_input_fails_before_compute_and_changes_nothing(workspace, no_compute, name):
    _, arguments, error, message = next(c for c in cases(str(workspace)) if c[0] == name)
    before = snapshot(workspace)
    arguments = [*arguments, "--trainer.default_root_dir", workspace / "runs" / name]
    with pytest.raises(error, match=message):
        run_cli(*arguments)
    after = snapshot(workspace)
    assert {k: after.get(k) for k in before} == before  # nothing changed or removed


def test_an_unknown_key_is_named(workspace, capsys):
    with pytest.raises(SystemExit) as raised:
        run_cli(*FIT, "--model.init_args.mixup_ratioo", "0.5")
    assert raised.value.code != 0 and "mixup_ratioo" in capsys.readouterr().err


def test_bad_json_for_the_plots(workspace, capsys):
    before = snapshot(workspace)
    with pytest.raises(SystemExit) as raised:
        plots_main([str(workspace / "empty.json")])
    assert raised.value.code == 1 and "no result records" in capsys.readouterr().err
    assert snapshot(workspace) == before

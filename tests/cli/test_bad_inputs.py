"""A walk through bad inputs: each run fails before any compute, with the project's message,
and leaves every file already on disk as it was."""

import hashlib
import json
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mixup_robust.evaluation import DefenseEvaluation
from mixup_robust.evaluation.defense.figures import main as plots_main
from mixup_robust.training import ClassifierModule
from tests.helpers.cli import CONF, run_cli

FIT = ["fit", "--config", CONF / "mixup.yaml"]
FIT_ERM = ["fit", "--config", CONF / "erm.yaml"]
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
    (root / "truncated.ckpt").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
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
    config_and_loading_inputs(root)
    return root


def config_and_loading_inputs(root: Path) -> None:
    """Inputs of the config and loading checks (issue 18): a repeated YAML key, overflowing
    weights, a checkpoint naming other code, an empty class folder, an undecodable image in a
    zip, a CIFAR batch that names code."""
    (root / "repeated_key.yaml").write_text("trainer:\n  max_epochs: 2\ntrainer:\n  devices: 1\n")
    good = torch.load(root / "good.ckpt", weights_only=True)
    good["state_dict"] = {k: v * 1e30 if v.is_floating_point() else v
                          for k, v in good["state_dict"].items()}  # fmt: skip
    torch.save(good, root / "overflow.ckpt")
    foreign = torch.load(root / "good.ckpt", weights_only=True)
    foreign["hyper_parameters"]["net"] = {"class_path": "this.Nope"}
    torch.save(foreign, root / "foreign_class.ckpt")
    empty = image_folder(root / "empty_class", 3, 8)
    for split in ("train", "test"):
        shutil.rmtree(empty / split / "class1")
        (empty / split / "class1").mkdir()
    broken = image_folder(root / "broken_image", 3, 8)
    (broken / "test" / "class2" / "3.png").write_bytes(b"no png")
    shutil.make_archive(str(root / "broken_image"), "zip", broken)
    cifar = root / "cifar_code" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1], "x": print}
        (cifar / name).write_bytes(pickle.dumps(entry, protocol=2))


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
         f"{w}/good.ckpt"], ValueError, "trainer.max_epochs: checkpoint 1, this run 3"),
        ("a longer cosine, accepted", [*FIT, "--trainer.max_epochs", "3", "--ckpt_path",
         f"{w}/good.ckpt", "--resume_overrides", "max_epochs"], ValueError,
         "max_epochs=1, but this run has max_epochs=3"),
        ("a resume at another lr", [*FIT, "--ckpt_path", f"{w}/good.ckpt",
         "--model.init_args.optimizer.init_args.lr", "0.5"], ValueError,
         r"model.init_args.optimizer.init_args.lr: checkpoint 0.05, this run 0.5\n"),
        ("a mixup checkpoint resumed as ERM", [*FIT_ERM, "--ckpt_path", f"{w}/good.ckpt"],
         ValueError, "another training class.*\n  model.class_path: checkpoint "
         "'mixup_robust.training.Mixup', this run 'mixup_robust.training.ERM'"),
        ("a VAE checkpoint resumed as mixup", [*FIT, "--ckpt_path", f"{w}/vae.ckpt"],
         ValueError, "model.class_path: checkpoint 'mixup_robust.training.MMDVAE'"),
        ("an override of the net", [*FIT, "--ckpt_path", f"{w}/good.ckpt",
         "--model.init_args.net.init_args.width", "16", "--resume_overrides", "width"],
         ValueError, "cannot change these"),
        ("an unknown override name", [*FIT, "--ckpt_path", f"{w}/good.ckpt",
         "--resume_overrides", "lrr"], ValueError, "names lrr: no setting"),
        ("a truncated ckpt_path", [*FIT, "--ckpt_path", f"{w}/truncated.ckpt"], ValueError,
         "truncated.ckpt is not a checkpoint, or it is damaged or truncated"),
        ("a missing ckpt_path", [*FIT, "--ckpt_path", f"{w}/missing.ckpt"],
         FileNotFoundError, "missing.ckpt: no such file"),
        # issue 18 item 4: nothing read silently
        ("a YAML key given twice", [*FIT, "--config", f"{w}/repeated_key.yaml"], SystemExit,
         "the key 'trainer' is given twice in one block, at lines 1 and 3"),
        ("a negative seed_everything", [*FIT, "--seed_everything", "-1"], ValueError,
         r"seed_everything=-1: a seed must be an integer in \[0, 4294967295\]"),
        ("a negative model seed", [*FIT, "--model.init_args.seed", "-3"], ValueError,
         "seed=-3: a seed must be"),
        ("no training batch", [*FIT, "--data.init_args.batch_size", "4096"], ValueError,
         "fewer than batch_size=4096, so there would be no training batch"),
        ("overflowing weights", [*TEST, ckpt, f"{w}/overflow.ckpt"], ValueError,
         "non-finite logits .* on the first clean test batch"),
        ("an empty class folder", [*FIT, *folder.split(), f"{w}/empty_class",
         "--data.init_args.channels", "1"], ValueError,
         r"class folder\(s\) test/class1, train/class1 .* hold no image"),
        ("an image that does not decode", [*FIT, *folder.split(), f"{w}/broken_image.zip",
         "--data.init_args.channels", "1"], ValueError,
         "Cannot decode image test/class2/3.png in .*broken_image.zip: not an image"),
        # issue 18 item 6: loading runs only known code
        ("a checkpoint naming other code", [*TEST, ckpt, f"{w}/foreign_class.ckpt"],
         ValueError, r"names 'this.Nope' \(at hyper_parameters.net.class_path\), outside"),
        ("resuming a checkpoint naming other code", [*FIT, "--ckpt_path",
         f"{w}/foreign_class.ckpt"], ValueError, "names 'this.Nope'"),
        ("a CIFAR batch naming code", [*FIT, "--data.class_path",
         "mixup_robust.data.CIFAR10DataModule", "--data.init_args.root", f"{w}/cifar_code"],
         ValueError, "data_batch_1 is not a plain CIFAR batch file: it names __builtin__.print"),
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
def test_a_bad_input_fails_before_compute_and_changes_nothing(workspace, no_compute, name, capsys):
    _, arguments, error, message = next(c for c in cases(str(workspace)) if c[0] == name)
    before = snapshot(workspace)
    arguments = [*arguments, "--trainer.default_root_dir", workspace / "runs" / name]
    with pytest.raises(error, match=None if error is SystemExit else message) as raised:
        run_cli(*arguments)
    if error is SystemExit:  # the parser's error: a status and a message on stderr
        assert raised.value.code != 0 and re.search(message, capsys.readouterr().err)
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

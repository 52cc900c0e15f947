"""Every training method trains through `cli.py fit` with its tiny config in tests/conf.

torchgeo's pattern: one small YAML per method, driven through the CLI; the checkpoint must hold
the trained weights (the classifier it loads predicts what the trained module predicts).
"""

import math

import pytest
import torch

from mixup_robust.checkpoints import load_vae
from mixup_robust.evaluation import load_classifier
from tests.helpers.cli import CONF, last_checkpoint, run_cli

CLASSIFIER_METHODS = ["erm", "mixup", "at", "trades", "iat", "aomixup", "manifold_mixup"]
SHORT = ("--trainer.limit_train_batches", 3, "--trainer.limit_val_batches", 1)


def fit(name: str, root, *extra):
    """Fits tests/conf/<name>.yaml for three steps; returns the CLI object."""
    return run_cli(
        "fit", "--config", CONF / f"{name}.yaml", "--trainer.default_root_dir", root, *SHORT, *extra
    )


def assert_checkpoint_holds_the_trained_classifier(cli, root) -> None:
    checkpoint = last_checkpoint(root)
    assert torch.load(checkpoint, weights_only=True)["global_step"] == 3
    assert math.isfinite(cli.trainer.callback_metrics["train/loss"].item())
    loaded, _ = load_classifier(str(checkpoint))
    images = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    trained = cli.model.classifier.eval()
    torch.testing.assert_close(loaded.eval()(images), trained(images))


def test_every_training_method_has_a_tiny_config():
    named = {path.stem for path in CONF.glob("*.yaml") if not path.stem.startswith("evaluate")}
    assert named == {*CLASSIFIER_METHODS, "vae", "varmixup"}


@pytest.mark.parametrize("name", CLASSIFIER_METHODS)
def test_a_tiny_config_trains_and_its_checkpoint_holds_the_weights(name, tmp_path):
    cli = fit(name, tmp_path)
    assert_checkpoint_holds_the_trained_classifier(cli, tmp_path)


def test_the_tiny_vae_and_varmixup_configs_train_one_after_the_other(tmp_path):
    fit("vae", tmp_path / "vae")
    vae_checkpoint = last_checkpoint(tmp_path / "vae")
    assert load_vae(vae_checkpoint).latent_dim == 16
    cli = fit("varmixup", tmp_path / "varmixup", "--model.init_args.vae_ckpt", vae_checkpoint)
    assert_checkpoint_holds_the_trained_classifier(cli, tmp_path / "varmixup")

"""An honest resume through the CLI: a change the user accepts by name is really trained with
and recorded; any other is refused, also when Lightning restores a checkpoint by itself."""

import shutil

import pytest
import torch
import yaml
from torch.optim.optimizer import register_optimizer_step_post_hook

from mixup_robust.run.resume_check import ResumeMismatchError
from tests.helpers.cli import CONF, fit_digits, last_checkpoint, run_cli

pytestmark = pytest.mark.slow

# lr x 0.1 from epoch 2 on: a schedule that does not depend on the run's length.
STEP_DECAY = (
    '{"class_path": "torch.optim.lr_scheduler.MultiStepLR", '
    '"init_args": {"milestones": [2], "gamma": 0.1}}'
)
LR = "--model.init_args.optimizer.init_args.lr"
MOMENTUM = "--model.init_args.optimizer.init_args.momentum"


@pytest.fixture(scope="module")
def two_epochs(tmp_path_factory):
    """last.ckpt of 2 epochs of mixup at lr 0.05 (momentum 0.9), the step decay at epoch 2."""
    root = tmp_path_factory.mktemp("two_epochs")
    return fit_digits(root, "mixup", 2, "--model.init_args.scheduler", STEP_DECAY)


@pytest.fixture
def learning_rates():
    """The learning rate of every optimizer step taken in this process."""
    rates = []
    handle = register_optimizer_step_post_hook(
        lambda optimizer, args, kwargs: rates.append(optimizer.param_groups[0]["lr"])
    )
    yield rates
    handle.remove()


def test_accepted_changes_are_trained_with_and_recorded(
    two_epochs, tmp_path, capsys, learning_rates
):
    resumed = fit_digits(
        tmp_path, "mixup", 3, "--model.init_args.scheduler", STEP_DECAY, "--ckpt_path",
        two_epochs, LR, 0.5, MOMENTUM, 0.5, "--resume_overrides", "lr,momentum,max_epochs",
    )  # fmt: skip
    notice = capsys.readouterr().err
    assert "model.init_args.optimizer.init_args.lr: checkpoint 0.05, this run 0.5" in notice
    assert "trainer.max_epochs: checkpoint 2, this run 3" in notice
    # Epoch 2 is past the milestone: 0.5 x 0.1 (the checkpoint's own rate there is 0.005).
    assert learning_rates and all(rate == pytest.approx(0.05) for rate in learning_rates)
    saved = torch.load(resumed, weights_only=True)
    group = saved["optimizer_states"][0]["param_groups"][0]
    assert (group["initial_lr"], group["momentum"]) == (0.5, 0.5)
    assert saved["lr_schedulers"][0]["base_lrs"] == [0.5]
    assert saved["epoch"] == 2
    # The next resume compares with what this run trained with.
    assert saved["hyper_parameters"]["optimizer"]["init_args"]["lr"] == 0.5
    assert saved["mixup_robust_settings"]["trainer.max_epochs"] == 3
    config = yaml.safe_load((resumed.parents[1] / "config.yaml").read_text())
    assert config["model"]["init_args"]["optimizer"]["init_args"]["lr"] == 0.5
    assert config["trainer"]["max_epochs"] == 3
    assert config["resume_overrides"] == "lr,momentum,max_epochs"


def test_a_resume_with_the_same_settings_goes_on_without_a_word(two_epochs, tmp_path, capsys):
    run_cli(
        "fit", "--config", CONF / "mixup.yaml", "--trainer.max_epochs", 2,
        "--trainer.default_root_dir", tmp_path, "--model.init_args.scheduler", STEP_DECAY,
        "--ckpt_path", two_epochs,
    )  # fmt: skip
    assert "changed settings" not in capsys.readouterr().err
    assert (tmp_path / "lightning_logs" / "version_0" / "config.yaml").is_file()


def test_a_requeued_run_with_other_settings_is_refused_at_the_restore(
    two_epochs, tmp_path, monkeypatch
):
    """SLURM requeue: Lightning restores hpc_ckpt_<n>.ckpt itself, with no --ckpt_path."""
    for name, value in {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "mixup", "SLURM_JOB_ID": "7",
                        "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
                        "SLURM_NTASKS_PER_NODE": "1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    shutil.copy(two_epochs, tmp_path / "hpc_ckpt_1.ckpt")
    with pytest.raises(ResumeMismatchError, match=r"lr: checkpoint 0\.05, this run 0\.5"):
        fit_digits(tmp_path, "mixup", 2, "--model.init_args.scheduler", STEP_DECAY, LR, 0.5)
    assert not list(tmp_path.glob("lightning_logs/*/checkpoints/*.ckpt"))


def test_the_refusal_names_the_checkpoint_and_how_to_accept(two_epochs, tmp_path):
    with pytest.raises(ResumeMismatchError) as refused:
        fit_digits(tmp_path, "mixup", 2, "--model.init_args.scheduler", STEP_DECAY,
                   "--ckpt_path", two_epochs, LR, 0.5, "--model.init_args.alpha", 0.4)  # fmt: skip
    message = str(refused.value)
    assert str(two_epochs) in message
    assert "model.init_args.alpha: checkpoint 1.0, this run 0.4" in message
    assert message.endswith("--resume_overrides alpha,lr")
    assert not (tmp_path / "lightning_logs").exists()  # refused before the run's folder
    with pytest.raises(AssertionError, match="no checkpoint"):
        last_checkpoint(tmp_path)

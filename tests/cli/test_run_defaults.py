"""The CLI's run defaults: one seed for all, the progress bar, short errors, SIGTERM's status."""

import os
import signal
import traceback

import pytest
import torch
from lightning.pytorch.callbacks import RichProgressBar

from mixup_robust.cli import SIGTERM_EXIT_STATUS, MixupRobustCLI, trainer_defaults
from mixup_robust.training import Mixup
from tests.helpers.cli import CONF, fit_digits, run_cli


def parse_only(*args: str) -> MixupRobustCLI:
    """The CLI with its classes and trainer built but nothing run."""
    return MixupRobustCLI(
        model_class=None, datamodule_class=None, subclass_mode_model=True,
        subclass_mode_data=True, trainer_defaults=trainer_defaults(),
        seed_everything_default=0, run=False, args=[str(a) for a in args],
    )  # fmt: skip


# ---------------------------------------------------------------- 7. one seed
def test_seed_everything_drives_every_seed_unless_one_is_set():
    config = CONF / "mixup.yaml"
    three = parse_only("--config", config, "--seed_everything", "3")
    four = parse_only("--config", config, "--seed_everything", "4")
    assert (three.model.seed, three.datamodule.seed) == (3, 3)
    assert (four.model.seed, four.datamodule.seed) == (4, 4)
    splits = [cli.datamodule.split_indices["val"] for cli in (three, four)]
    assert not torch.equal(*splits)  # the validation split follows the run's seed
    own = parse_only(
        "--config", config, "--seed_everything", "3",
        "--model.init_args.seed", "7", "--data.init_args.seed", "8",
    )  # fmt: skip
    assert (own.model.seed, own.datamodule.seed, own.model.hparams.seed) == (7, 8, 7)


# ---------------------------------------------------------------- 8. progress bar
def test_the_progress_bar_can_be_switched_off():
    config = CONF / "mixup.yaml"
    quiet = parse_only("--config", config, "--trainer.enable_progress_bar", "false")
    assert quiet.trainer.progress_bar_callback is None
    default = parse_only("--config", config)
    assert isinstance(default.trainer.progress_bar_callback, RichProgressBar)


# ---------------------------------------------------------------- 9. errors in a few lines
@pytest.mark.parametrize(
    ("args", "message"),
    [(["fit", "--config", CONF / "mixup.yaml", "--model.init_args.alpha", "-1"],
      "alpha=-1.0: the mixup ratio"),
     (["fit", "--config", CONF / "mixup.yaml", "--data.init_args.batch_size", "0"],
      "batch_size and eval_batch_size must be at least 1"),
     (["test", "--config", CONF / "evaluate.yaml", "--model.init_args.checkpoint", "unread.ckpt",
       '--model.init_args.attacks=[{"class_path": "mixup_robust.attacks.PGD", '
       '"init_args": {"eps": -0.1}}]'], "eps=-0.1 is -0.1000 in pixel units")],
)  # fmt: skip
def test_a_class_error_reaches_the_user_in_a_few_lines(args, message):
    with pytest.raises(ValueError) as raised:
        run_cli(*args)
    shown = "".join(traceback.format_exception(raised.value))
    assert message in shown.splitlines()[-1]
    assert "Union subtypes" not in shown and len(shown.splitlines()) < 15, shown


def test_a_run_stopped_by_sigterm_exits_with_the_killed_status(tmp_path, monkeypatch, capsys):
    original = Mixup.training_step

    def training_step(self, batch, batch_idx):
        if self.global_step == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill` or a scheduler sends it
        return original(self, batch, batch_idx)

    monkeypatch.setattr(Mixup, "training_step", training_step)
    with pytest.raises(SystemExit) as stopped:
        fit_digits(tmp_path, "mixup", 3)
    assert stopped.value.code == SIGTERM_EXIT_STATUS == 143
    message = capsys.readouterr().err
    assert "Stopped by SIGTERM" in message and "--ckpt_path" in message
    # Nothing pretends the run finished: no checkpoint after the third epoch exists.
    assert not list(tmp_path.glob("lightning_logs/version_*/checkpoints/*epoch=2*"))

"""How a resume's settings are compared with its checkpoint's (run/resume_check.py)."""

import pytest

from mixup_robust.run.resume_check import (
    SETTINGS_KEY,
    ResumeMismatchError,
    check_resume,
    differences,
    matches,
    model_settings,
    parse_overrides,
    settings_of_checkpoint,
    short_name,
)

HPARAMS = {
    "_class_path": "mixup_robust.training.Mixup",
    "_instantiator": "lightning.pytorch.cli.instantiate_module",
    "net": {"class_path": "mixup_robust.nets.SmallCNN", "init_args": {"width": 8}},
    "alpha": 1.0,
    "image_shape": (1, 8, 8),
    "optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.05, "momentum": 0.9}},
    "scheduler": {"class_path": "mixup_robust.training.CosineSchedule"},
    "seed": 0,
    "compile": False,
}
CHECKPOINT = {
    "hyper_parameters": HPARAMS,
    SETTINGS_KEY: {"data.init_args.seed": 0, "trainer.max_epochs": 2},
}


def settings(**changes) -> dict:
    """The checkpoint's settings with some values changed (dotted keys, `__` for `.`)."""
    current = settings_of_checkpoint(CHECKPOINT)
    current.update({key.replace("__", "."): value for key, value in changes.items()})
    return current


def test_settings_are_dotted_keys_without_execution_options():
    saved = settings_of_checkpoint(CHECKPOINT)
    assert saved["model.class_path"] == "mixup_robust.training.Mixup"
    assert saved["model.init_args.optimizer.init_args.lr"] == 0.05
    assert saved["model.init_args.net.init_args.width"] == 8
    assert saved["model.init_args.image_shape"] == [1, 8, 8]  # a tuple compares as YAML's list
    assert saved["trainer.max_epochs"] == 2
    assert "model.init_args.compile" not in saved  # how it runs, not what it learns
    assert not any(key.startswith("model.init_args._") for key in saved)


def test_a_checkpoint_written_before_the_settings_record_keeps_its_schedule_length():
    older = {"hyper_parameters": HPARAMS, "schedule_max_epochs": 5}
    assert settings_of_checkpoint(older)["trainer.max_epochs"] == 5
    assert "data.init_args.seed" not in settings_of_checkpoint(older)


def test_a_name_covers_the_keys_its_parts_occur_in_in_a_row():
    lr = "model.init_args.optimizer.init_args.lr"
    assert matches("lr", lr) and matches("optimizer", lr) and matches("init_args.lr", lr)
    assert matches(lr, lr)
    assert not matches("l", lr) and not matches("optimizer.lr", lr)
    assert matches("max_epochs", "trainer.max_epochs")
    assert not matches("epochs", "trainer.max_epochs")


def test_short_names_name_one_key_alone():
    keys = ["model.init_args.seed", "data.init_args.seed", "model.init_args.optimizer.init_args.lr"]
    assert short_name("model.init_args.optimizer.init_args.lr", keys) == "lr"
    assert short_name("data.init_args.seed", keys) == "data.init_args.seed"


def test_identical_settings_pass_and_a_new_setting_is_no_difference():
    assert check_resume(settings(), settings(), [], "x.ckpt") == []
    assert differences(settings(), settings(**{"model__init_args__new_option": 3})) == []


def test_every_difference_is_listed_with_both_values_and_the_names_to_accept():
    current = settings(model__init_args__optimizer__init_args__lr=0.5, trainer__max_epochs=3)
    with pytest.raises(ResumeMismatchError) as refused:
        check_resume(settings(), current, [], "run/last.ckpt")
    message = str(refused.value)
    assert "model.init_args.optimizer.init_args.lr: checkpoint 0.05, this run 0.5" in message
    assert "trainer.max_epochs: checkpoint 2, this run 3" in message
    assert "run/last.ckpt" in message
    assert message.endswith("--resume_overrides lr,max_epochs")


def test_accepted_names_let_exactly_those_changes_through():
    current = settings(model__init_args__optimizer__init_args__lr=0.5, trainer__max_epochs=3)
    with pytest.raises(ResumeMismatchError, match="max_epochs: checkpoint 2") as refused:
        check_resume(settings(), current, ["lr"], "x.ckpt")
    assert "lr: checkpoint" not in str(refused.value)
    found = check_resume(settings(), current, ["lr", "trainer.max_epochs"], "x.ckpt")
    assert found == [
        ("model.init_args.optimizer.init_args.lr", 0.05, 0.5),
        ("trainer.max_epochs", 2, 3),
    ]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("model.class_path", "mixup_robust.training.ERM"),
        ("model.init_args.net.init_args.width", 16),
        ("model.init_args.optimizer.class_path", "torch.optim.Adam"),
        ("model.init_args.scheduler.class_path", "torch.optim.lr_scheduler.MultiStepLR"),
    ],
)
def test_another_class_net_optimizer_or_schedule_is_refused_even_when_named(key, value):
    current = settings(**{key.replace(".", "__"): value})
    names = [key, key.split(".")[-1]]
    with pytest.raises(ResumeMismatchError, match="cannot change these"):
        check_resume(settings(), current, names, "x.ckpt")


def test_a_setting_the_run_lacks_is_a_difference():
    current = settings()
    del current["model.init_args.alpha"]  # e.g. ERM has no alpha
    assert differences(settings(), current) == [("model.init_args.alpha", 1.0, "<not set>")]


def test_a_name_that_matches_no_setting_is_refused():
    with pytest.raises(ResumeMismatchError, match="names lrr: no setting"):
        check_resume(settings(), settings(), ["lrr"], "x.ckpt")


def test_override_lists_and_model_settings():
    assert parse_overrides(" lr, max_epochs ,") == ["lr", "max_epochs"]
    assert parse_overrides(None) == []
    assert model_settings({"alpha": 1.0})["model.init_args.alpha"] == 1.0

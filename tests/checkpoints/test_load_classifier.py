"""`load_classifier` rebuilds the net from a checkpoint's net spec alone, for checkpoints of every
version: today's, and those written with the former optimizer/schedule flags (before issue 13)."""

from functools import partial

import pytest
import torch

from mixup_robust.checkpoints import load_classifier
from mixup_robust.nets import SmallCNN, build_classifier
from mixup_robust.training import ClassifierModule

MEAN, STD = (0.3057362222323241,), (0.3759984578938201,)
# The hyper_parameters that `cli.py fit --config configs/quickstart/mixup.yaml` wrote at commit
# a59d6fd, the last before issue 13 (copied from such a checkpoint, width 8): the optimizer
# and schedule are flags, not class_path specs.
FORMER_HPARAMS = {
    "_class_path": "mixup_robust.training.Mixup",
    "_instantiator": "lightning.pytorch.cli.instantiate_module",
    "alpha": 1.0, "channels_last": False, "compile": False, "compile_backend": "inductor",
    "gamma": 0.1, "image_shape": (1, 8, 8), "lr": 0.05, "mean": MEAN,
    "milestones": [100, 150], "momentum": 0.9, "nesterov": False,
    "net": {"class_path": "mixup_robust.nets.SmallCNN", "init_args": {"width": 8}},
    "num_classes": 10, "optimizer": "sgd", "ratio_per": "sample", "schedule": "cosine",
    "seed": 0, "std": STD, "val_attack": None, "val_attack_batches": 2,
    "warmup_fraction": 0.2, "weight_decay": 0.0005,
}  # fmt: skip
# Every optimizer and schedule the former flags could name.
FORMER_FLAGS = [
    {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "schedule": "constant"},
    {"lr": 0.05, "schedule": "cosine"},
    {"nesterov": True, "schedule": "onecycle", "warmup_fraction": 0.3},
    {"schedule": "multistep", "milestones": [75], "gamma": 0.2},
]


def former_checkpoint(path, classifier: torch.nn.Module, flags: dict) -> dict:
    """Writes a checkpoint laid out as the former code wrote it (a59d6fd's `last.ckpt`)."""
    state = {f"classifier.{key}": value for key, value in classifier.state_dict().items()}
    optimizer = torch.optim.SGD(classifier.parameters(), lr=0.05, momentum=0.9)
    contents = {
        "epoch": 0, "global_step": 3, "pytorch-lightning_version": "2.6.6",
        "state_dict": state, "hparams_name": "kwargs",
        "hyper_parameters": {**FORMER_HPARAMS, **flags},
        "optimizer_states": [optimizer.state_dict()],
        "lr_schedulers": [{"T_max": 1, "eta_min": 0.0, "base_lrs": [0.05], "last_epoch": 1}],
        "schedule_max_epochs": 1, "DigitsDataModule": {"train_batches_seen": 3},
    }  # fmt: skip
    torch.save(contents, path)
    return contents


@pytest.mark.parametrize("flags", FORMER_FLAGS, ids=lambda flags: flags["schedule"])
def test_a_checkpoint_the_former_code_wrote_loads_with_its_weights(tmp_path, flags):
    torch.manual_seed(3)
    written = build_classifier(partial(SmallCNN, width=8), 10, (1, 8, 8), MEAN, STD)
    contents = former_checkpoint(tmp_path / "former.ckpt", written, flags)
    loaded, hparams = load_classifier(str(tmp_path / "former.ckpt"))
    assert hparams == contents["hyper_parameters"]  # the checkpoint's own record, as written
    assert isinstance(loaded[1], SmallCNN) and loaded[1].stem[0].out_channels == 8
    expected = written.state_dict()
    assert loaded.state_dict().keys() == expected.keys()
    assert all(torch.equal(loaded.state_dict()[k], expected[k]) for k in expected)
    images = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(loaded.eval()(images), written.eval()(images))


def test_a_checkpoint_with_former_flags_is_still_evaluated(digits_checkpoint, tmp_path):
    state = torch.load(digits_checkpoint, weights_only=True)
    hparams = state["hyper_parameters"]
    for key in ("optimizer", "scheduler", "scheduler_interval"):
        del hparams[key]
    hparams.update(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=False,
                   schedule="cosine", milestones=[100, 150], gamma=0.1,
                   warmup_fraction=0.2)  # fmt: skip
    former = tmp_path / "former.ckpt"
    torch.save(state, former)
    today, _ = load_classifier(str(digits_checkpoint))
    before, former_hparams = load_classifier(str(former))
    assert former_hparams["schedule"] == "cosine"  # the checkpoint's own record, as written
    images = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(before.eval()(images), today.eval()(images))


def test_only_the_net_is_built_not_the_training_method(digits_checkpoint, monkeypatch):
    """Neither the method nor its optimizer is built: a method's arguments cannot stop a load."""

    def refuse(*args, **kwargs):
        raise AssertionError("load_classifier built the training method")

    monkeypatch.setattr(ClassifierModule, "__init__", refuse)
    classifier, hparams = load_classifier(str(digits_checkpoint))
    assert hparams["_class_path"] == "mixup_robust.training.Mixup"
    stored = torch.load(digits_checkpoint, weights_only=True)["state_dict"]
    assert {f"classifier.{k}" for k in classifier.state_dict()} == set(stored)
    assert classifier.training  # as build_classifier returns it (the former load did too)


def test_a_net_spec_that_cannot_be_built_is_a_clear_error(digits_checkpoint, tmp_path):
    contents = torch.load(digits_checkpoint, weights_only=True)
    contents["hyper_parameters"]["net"]["init_args"] = {"depth": 3}  # SmallCNN has no depth
    torch.save(contents, tmp_path / "renamed.ckpt")
    with pytest.raises(ValueError, match=r"renamed\.ckpt: its net .*cannot be built"):
        load_classifier(str(tmp_path / "renamed.ckpt"))
    del contents["hyper_parameters"]["net"]
    torch.save(contents, tmp_path / "no_net.ckpt")
    with pytest.raises(ValueError, match="not a mixup_robust classifier checkpoint"):
        load_classifier(str(tmp_path / "no_net.ckpt"))

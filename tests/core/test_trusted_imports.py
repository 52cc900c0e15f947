"""A checkpoint's import paths are checked against the allow-list before anything is imported:
other modules are refused unimported, trusted paths that lead elsewhere are refused, a user's
module is admitted only when named in MIXUP_ROBUST_TRUSTED_IMPORTS."""

import sys

import pytest
import torch

from mixup_robust.checkpoints import load_classifier
from mixup_robust.trusted_imports import (
    TRUSTED_ENV,
    UntrustedImportError,
    check_checkpoint_file,
    check_trusted_imports,
    is_trusted,
)


@pytest.fixture
def noisy_module(tmp_path, monkeypatch):
    """A module on sys.path that leaves a marker file when it is imported."""
    marker = tmp_path / "imported"
    (tmp_path / "noisy_lab.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).touch()\nclass Net:\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "noisy_lab", raising=False)
    monkeypatch.delenv(TRUSTED_ENV, raising=False)
    return marker


def hparams(**changes) -> dict:
    base = {
        "_class_path": "mixup_robust.training.Mixup",
        "net": {"class_path": "mixup_robust.nets.SmallCNN", "init_args": {"width": 8}},
        "optimizer": {"class_path": "torch.optim.SGD", "init_args": {"lr": 0.1}},
        "scheduler": {"class_path": "mixup_robust.training.CosineSchedule"},
        "vae_ckpt": "vae.ckpt",
        "compile_backend": "inductor",
        "_instantiator": "lightning.pytorch.cli.instantiate_module",
    }
    return base | changes


def test_the_allow_list_by_text():
    assert is_trusted("mixup_robust.nets.SmallCNN") and is_trusted("torch.optim.SGD")
    assert is_trusted("torchvision.models.resnet18")
    assert is_trusted("lightning.pytorch.cli.instantiate_module")
    refused = ["this.Nope", "os.system", "lightning.pytorch.Trainer", "torch.hub.load",
               "torch.load", "torch.utils.cpp_extension.load_inline", "torchlike.Net"]  # fmt: skip
    for path in refused:
        assert not is_trusted(path), path


def test_a_checkpoint_of_this_package_passes():
    check_trusted_imports(hparams(), "good.ckpt")  # file names such as vae.ckpt are no paths


@pytest.mark.parametrize("where", ["net", "optimizer", "scheduler", "val_attack", "_class_path"])
def test_another_module_is_refused_unimported(noisy_module, where):
    value = "noisy_lab.Net" if where == "_class_path" else {"class_path": "noisy_lab.Net"}
    with pytest.raises(UntrustedImportError, match=r"'noisy_lab.Net' \(at hyper_parameters"):
        check_trusted_imports(hparams(**{where: value}), "x.ckpt")
    # jsonargparse imports a bare dotted string for a class or callable argument, too
    with pytest.raises(UntrustedImportError, match=TRUSTED_ENV):
        check_trusted_imports(hparams(**{where: "noisy_lab.Net"}), "x.ckpt")
    inner = {"steps": [{"class_path": "noisy_lab.Net"}]}
    deep = hparams(val_attack={"class_path": "mixup_robust.attacks.PGD", "init_args": inner})
    with pytest.raises(UntrustedImportError, match=r"val_attack.init_args.steps\[0\]"):
        check_trusted_imports(deep, "x.ckpt")
    assert not noisy_module.exists() and "noisy_lab" not in sys.modules


def test_a_trusted_path_that_leads_elsewhere_is_refused():
    for path in ("mixup_robust.cli.os.system", "torch.nn.modules.module.torch.load"):
        with pytest.raises(UntrustedImportError, match="resolves to"):
            check_trusted_imports(hparams(net={"class_path": path}), "x.ckpt")


def test_a_users_module_is_admitted_when_named(noisy_module, monkeypatch):
    monkeypatch.setenv(TRUSTED_ENV, "other_lab, noisy_lab")
    check_trusted_imports(hparams(net={"class_path": "noisy_lab.Net"}), "x.ckpt")
    monkeypatch.setenv(TRUSTED_ENV, "noisy-lab")
    with pytest.raises(ValueError, match="not a module name"):
        check_trusted_imports(hparams(), "x.ckpt")


def test_loading_refuses_before_importing(tmp_path, noisy_module):
    """Evaluation (load_classifier) and resuming (check_checkpoint_file) read the same check."""
    classifier = torch.nn.Linear(2, 2).state_dict()
    contents = {
        "hyper_parameters": hparams(net={"class_path": "noisy_lab.Net"}),
        "state_dict": {f"classifier.{k}": v for k, v in classifier.items()},
    }
    torch.save(contents, tmp_path / "foreign.ckpt")
    with pytest.raises(UntrustedImportError, match=r"noisy_lab\.Net"):
        load_classifier(str(tmp_path / "foreign.ckpt"))
    with pytest.raises(UntrustedImportError, match=r"noisy_lab\.Net"):
        check_checkpoint_file(tmp_path / "foreign.ckpt")
    assert not noisy_module.exists() and "noisy_lab" not in sys.modules
    (tmp_path / "notes.ckpt").write_text("not a checkpoint")
    check_checkpoint_file(tmp_path / "notes.ckpt")  # left to the loader, which reports it

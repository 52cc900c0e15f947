"""Loading a trained classifier from a training checkpoint, with clear errors."""

import sys
from pathlib import Path

from lightning.pytorch.cli import instantiate_module
from torch import nn

from mixup_robust.nets.checkpoint_file import read_checkpoint
from mixup_robust.training import ClassifierModule
from mixup_robust.training.former_flags import has_former_flags, upgrade_former_flags
from mixup_robust.trusted_imports import check_trusted_imports


def load_classifier(path: str) -> tuple[nn.Module, dict]:
    """The `Normalize -> net` classifier of a training checkpoint, and its hyperparameters.

    Args:
        path: a `.ckpt` written by `cli.py fit` (e.g. `<run>/checkpoints/last.ckpt`).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a checkpoint of a mixup_robust training method, or it
            names code outside the allow-list of `mixup_robust.trusted_imports` (refused
            before anything is imported).
    """
    file = Path(path)
    hparams, state = read_checkpoint(
        file,
        f"No checkpoint at {file}. Train one first (python cli.py fit --config ...); its "
        "checkpoints are in <run directory>/checkpoints/ (last.ckpt, best-*.ckpt).",
    )
    check_trusted_imports(hparams, file)
    if "_class_path" not in hparams or not any(k.startswith("classifier.") for k in state):
        raise ValueError(
            f"{file} is not a mixup_robust classifier checkpoint (written by `cli.py fit` with "
            "a training method such as ERM or Mixup). A VAE or evaluation checkpoint, or one "
            "saved outside the CLI, cannot be evaluated as a classifier."
        )
    method = _training_class(hparams["_class_path"], file)
    if has_former_flags(hparams):  # written before issue 13: rebuilt with today's arguments
        arguments = upgrade_former_flags(hparams)
        arguments.pop("_instantiator", None)
        module = instantiate_module(method, arguments)
        module.load_state_dict(state)
    else:
        module = method.load_from_checkpoint(file, map_location="cpu")
    return module.classifier, dict(hparams)


def _training_class(class_path: str, file: Path) -> type[ClassifierModule]:
    """The already imported training class named by a checkpoint (nothing new is imported)."""
    module_name, _, class_name = class_path.rpartition(".")
    method = getattr(sys.modules.get(module_name), class_name, None)
    if not (isinstance(method, type) and issubclass(method, ClassifierModule)):
        raise ValueError(
            f"{file} was written by {class_path}, which is not a mixup_robust training method "
            "(import the module that defines it before evaluating, if it is one)."
        )
    return method

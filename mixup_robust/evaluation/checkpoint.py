"""Loading a trained classifier from a training checkpoint, with clear errors."""

import sys
from pathlib import Path

import torch
from torch import nn

from mixup_robust.training import ClassifierModule


def load_classifier(path: str) -> tuple[nn.Module, dict]:
    """The `Normalize -> net` classifier of a training checkpoint, and its hyperparameters.

    Args:
        path: a `.ckpt` written by `cli.py fit` (e.g. `<run>/checkpoints/last.ckpt`).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a checkpoint of a mixup_robust training method.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"No checkpoint at {file}. Train one first (python cli.py fit --config ...); its "
            "checkpoints are in <run directory>/checkpoints/ (last.ckpt, best-*.ckpt)."
        )
    try:
        contents = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated file, another format, a pickle of objects
        raise ValueError(f"{file} is not a readable Lightning checkpoint: {error}") from error
    hparams = contents.get("hyper_parameters", {}) if isinstance(contents, dict) else {}
    state = contents.get("state_dict", {}) if isinstance(contents, dict) else {}
    if "_class_path" not in hparams or not any(k.startswith("classifier.") for k in state):
        raise ValueError(
            f"{file} is not a mixup_robust classifier checkpoint (written by `cli.py fit` with "
            "a training method such as ERM or Mixup). A VAE or evaluation checkpoint, or one "
            "saved outside the CLI, cannot be evaluated as a classifier."
        )
    method = _training_class(hparams["_class_path"], file)
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

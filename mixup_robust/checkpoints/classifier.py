"""Loading a trained classifier from a training checkpoint, with clear errors.

A checkpoint of `cli.py fit` records its method's `__init__` arguments (`hyper_parameters`):
among them the net spec (`net`: class_path and init_args, as the config gave it) and the
data's `num_classes`, `image_shape`, `mean` and `std`. The classifier is rebuilt from these
alone, `build_classifier(net, ...)` as every training method builds it, and given the
checkpoint's `classifier.*` weights. The method itself, its optimizer and schedule are not
built: a checkpoint of any version loads, whatever its other arguments were (those written
before issue 13 named the optimizer and schedule by flags: `optimizer: sgd`, `lr`,
`schedule`, ...).
"""

from collections.abc import Mapping
from pathlib import Path

from jsonargparse import ArgumentParser
from torch import nn

from mixup_robust.checkpoints.file import read_checkpoint
from mixup_robust.nets import NetFactory, build_classifier
from mixup_robust.trusted_imports import check_trusted_imports

CLASSIFIER_PREFIX = "classifier."
# What a training method's hyperparameters hold about its classifier.
NET_SPEC = ("net", "num_classes", "image_shape")


def load_classifier(path: str) -> tuple[nn.Module, dict]:
    """The `Normalize -> net` classifier of a training checkpoint, and its hyperparameters.

    The classifier is on the CPU, in train mode, as `build_classifier` returns it.

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
    weights = {
        key[len(CLASSIFIER_PREFIX) :]: value
        for key, value in state.items()
        if key.startswith(CLASSIFIER_PREFIX)
    }
    if "_class_path" not in hparams or any(key not in hparams for key in NET_SPEC) or not weights:
        raise ValueError(
            f"{file} is not a mixup_robust classifier checkpoint (written by `cli.py fit` with "
            "a training method such as ERM or Mixup). A VAE or evaluation checkpoint, or one "
            "saved outside the CLI, cannot be evaluated as a classifier."
        )
    net = net_factory(hparams["net"], file)
    classifier = build_classifier(
        net, hparams["num_classes"], hparams["image_shape"], hparams.get("mean"), hparams.get("std")
    )
    classifier.load_state_dict(weights)
    return classifier, dict(hparams)


def net_factory(spec: Mapping | str, source: str | Path) -> NetFactory:
    """The net factory of a stored net spec (class_path and init_args), as the CLI built it.

    Check the spec with `check_trusted_imports` first: building it imports its class_path.

    Args:
        spec: the `net` of a checkpoint's hyperparameters.
        source: the checkpoint, for the message.

    Raises:
        ValueError: the spec names no net this version can build with those arguments.
    """
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--net", type=NetFactory, required=True)
    try:
        return parser.instantiate_classes(parser.parse_object({"net": spec})).net
    except Exception as error:  # jsonargparse: an unknown class or argument
        raise ValueError(
            f"{source}: its net {spec!r} cannot be built ({error}). Was it written by another "
            "version of mixup_robust, or with a net of your own module that is not installed?"
        ) from None

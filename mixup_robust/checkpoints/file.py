"""Reading a checkpoint file's hyperparameters and weights, with clear errors.

Plain values and tensors only (`torch.load(weights_only=True)`): no pickled object of a file
is ever run. Every loader of `mixup_robust.checkpoints`, the resume (`mixup_robust.run`) and
the training guard read files and check weights through these functions.
"""

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch


def non_finite_entries(state_dict: dict) -> list[str]:
    """Names of the floating-point tensors of a state dict that hold NaN or inf."""
    return [
        name
        for name, value in state_dict.items()
        if isinstance(value, torch.Tensor)
        and value.is_floating_point()
        and not bool(torch.isfinite(value).all())
    ]


def check_finite_weights(state: dict[str, Any], source: str) -> None:
    """Raises if a floating-point tensor of a state_dict holds NaN or infinity.

    A diverged training run leaves such weights; every prediction of the model is then
    meaningless, and an attack on it measures nothing.
    """
    bad = non_finite_entries(state)
    if bad:
        raise ValueError(
            f"{source} has non-finite weights (NaN or inf) in {bad[:5]}"
            f"{' ...' if len(bad) > 5 else ''}; the training that wrote it diverged."
        )


def _unreadable(file: Path, error: Exception) -> ValueError:
    """Why torch could not read `file`, in this project's words.

    torch's own message may advise `weights_only=False`, which would run arbitrary code from
    the file; it is never passed on.
    """
    if isinstance(error, pickle.UnpicklingError) and zipfile.is_zipfile(file):
        return ValueError(
            f"{file} is a PyTorch file that holds Python objects other than plain values and "
            "tensors. Checkpoints are only read as plain tensors (unpickling objects can run "
            "code); give a checkpoint written by `cli.py fit`."
        )
    return ValueError(
        f"{file} is not a checkpoint, or it is damaged or truncated (torch cannot read it). "
        "Give a .ckpt written by `cli.py fit` (<run>/checkpoints/last.ckpt or best-*.ckpt); "
        "if it is one, it was cut short (a full disk, an interrupted copy): copy it again."
    )


def load_checkpoint(file: Path, missing_hint: str) -> dict:
    """The whole contents of a checkpoint file (plain values and tensors only).

    Args:
        file: the `.ckpt` file.
        missing_hint: what to tell the user when the file does not exist.

    Raises:
        FileNotFoundError: no file at `file` (the message starts with `missing_hint`).
        ValueError: the file cannot be read as a checkpoint of plain values and tensors, or
            its weights hold NaN or inf (a diverged training run).
    """
    if not file.is_file():
        raise FileNotFoundError(missing_hint)
    try:
        contents = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated file, another format, a pickle of objects
        raise _unreadable(file, error) from None
    contents = contents if isinstance(contents, dict) else {}
    state = contents.get("state_dict", {})
    broken = non_finite_entries(state) if isinstance(state, dict) else []
    if broken:
        raise ValueError(
            f"{file} holds non-finite weights (NaN or inf in {broken[:3]}): its training "
            "diverged, and any measurement of it would be meaningless. Train again with a "
            "lower learning rate, or use an earlier checkpoint of the run."
        )
    return contents


def read_checkpoint(file: Path, missing_hint: str) -> tuple[dict, dict]:
    """The `hyper_parameters` and `state_dict` of a checkpoint file (see `load_checkpoint`)."""
    contents = load_checkpoint(file, missing_hint)
    return contents.get("hyper_parameters", {}), contents.get("state_dict", {})

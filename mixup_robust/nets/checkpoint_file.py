"""Reading a Lightning checkpoint's hyperparameters and weights, with clear errors.

It lives in `nets` (which imports nothing of the package) so that both `nets.vae` and the
evaluation can use it without an import cycle.
"""

from pathlib import Path

import torch


def read_checkpoint(file: Path, missing_hint: str) -> tuple[dict, dict]:
    """The `hyper_parameters` and `state_dict` of a checkpoint file (plain tensors only).

    Args:
        file: the `.ckpt` file.
        missing_hint: what to tell the user when the file does not exist.

    Raises:
        FileNotFoundError: no file at `file` (the message starts with `missing_hint`).
        ValueError: the file cannot be read as a checkpoint of plain values and tensors.
    """
    if not file.is_file():
        raise FileNotFoundError(missing_hint)
    try:
        contents = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated file, another format, a pickle of objects
        raise ValueError(f"{file} is not a readable Lightning checkpoint: {error}") from error
    contents = contents if isinstance(contents, dict) else {}
    return contents.get("hyper_parameters", {}), contents.get("state_dict", {})

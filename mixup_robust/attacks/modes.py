"""What every attack needs from the run around it: gradients on, and modules' modes kept."""

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


def require_gradients(where: str) -> None:
    """Raises a clear error when attacks would run under inference mode."""
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            f"{where} runs an attack, which needs gradients, but Lightning is in inference mode. "
            "Set `trainer.inference_mode: false` (the mixup-robust CLI does by default)."
        )


@contextlib.contextmanager
def preserved_modes(module: nn.Module, eval_inside: bool = False) -> Iterator[None]:
    """Restores every submodule's own train/eval flag when the block ends.

    `module.train()` would not do: it sets every submodule, so a batch norm that the user
    froze in eval mode inside a model in train mode would be unfrozen.

    Args:
        module: the module whose submodules' modes are saved.
        eval_inside: put `module` (all its submodules) in eval mode for the block.
    """
    modes = {submodule: submodule.training for submodule in module.modules()}
    if eval_inside:
        module.eval()
    try:
        yield
    finally:
        for submodule, training in modes.items():
            submodule.training = training

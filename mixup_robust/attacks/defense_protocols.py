"""What attacks need from a defense, declared as Protocols (attacks do not import defenses).

`mixup_robust.defenses.Defense` and its subclasses satisfy them; any other nn.Module with
these members can be attacked too. `isinstance` checks that the members exist (not their
signatures), so an attack checks its defense before any compute and says what is missing.
"""

from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class PartnerPool(Protocol):
    """Images that mixing defenses draw partners from, addressed by pool position."""

    def fetch(self, positions: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 1] at `positions` (int64, any shape flattened)."""
        ...


@runtime_checkable
class RandomizedDefense(Protocol):
    """A defense whose random draws an attack can choose and whose executions it can see."""

    def fresh_draw(self, draw: int) -> AbstractContextManager[None]:
        """Within the block every random draw is draw `draw` (0 scores, attacks use >= 1)."""
        ...

    def execution_log_probs(
        self, images: torch.Tensor, sample_index: torch.Tensor, executions: torch.Tensor
    ) -> torch.Tensor:
        """Log-probabilities of single executions, (B, len(executions), C), differentiable."""
        ...


@runtime_checkable
class PartnerMixingDefense(RandomizedDefense, Protocol):
    """A randomized defense that mixes each input with partners drawn from a pool.

    Its partners can be drawn once and kept (the MI paper's adaptive attack), in pixel space
    (Mixup Inference) or in a latent space (VarMI).
    """

    classifier: nn.Module

    def partners(
        self,
        predicted: torch.Tensor,
        sample_index: torch.Tensor,
        executions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Pool positions of each sample's partners, (B, E)."""
        ...

    def mixed_log_probs(self, images: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of each input mixed with each of its partners, (B, N, C)."""
        ...


@runtime_checkable
class PixelMixingDefense(PartnerMixingDefense, Protocol):
    """A partner-mixing defense whose input is lambda x + (1 - lambda) x_s in pixel space.

    `mixes_pixels` says whether it really mixes pixels: VarMI has every member (it mixes the
    latent codes of the same partners) and sets it False.
    """

    mixup_ratio: float
    pool: PartnerPool
    mixes_pixels: bool


def _members(protocol: type) -> set[str]:
    """The attributes and methods that `protocol` (and its protocol bases) declares."""
    names: set[str] = set()
    for klass in protocol.__mro__:
        if klass is Protocol:
            break
        names |= set(vars(klass).get("__annotations__", {}))
        names |= {name for name, value in vars(klass).items() if callable(value)}
    return {name for name in names if not name.startswith("_")}


def require_defense(defense: object, protocol: type, attack: str) -> None:
    """Raises a TypeError when `defense` lacks a member of `protocol` that `attack` needs."""
    if isinstance(defense, protocol):
        return
    missing = sorted(name for name in _members(protocol) if not hasattr(defense, name))
    raise TypeError(
        f"{attack} needs a {protocol.__name__} ({', '.join(sorted(_members(protocol)))}), "
        f"but {type(defense).__name__} lacks {', '.join(missing)}. Attack a "
        "mixup_robust.defenses.Defense, or give the model these members."
    )

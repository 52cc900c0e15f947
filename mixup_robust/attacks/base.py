"""Attacks declared in YAML: plain objects that craft adversarial batches against a model."""

import abc
import contextlib
from collections.abc import Iterator

import torch
from torch import nn
from typing_extensions import override

from mixup_robust.attacks.defense_protocols import RandomizedDefense, require_defense
from mixup_robust.attacks.modes import preserved_modes

THREAT_MODELS = ("oblivious", "adaptive")


class FreshDraws(nn.Module):
    """A defense seen as a plain model whose every call draws new randomness.

    Attacks such as AutoAttack query their model many times, on subsets of the batch; each
    call here uses the next attack-time draw (draw >= 1, never the scoring draw 0).
    """

    def __init__(self, defense: nn.Module) -> None:
        super().__init__()
        require_defense(defense, RandomizedDefense, "FreshDraws")
        self.defense = defense
        self.calls = 0

    @override
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        with self.defense.fresh_draw(self.calls):
            return self.defense(images)


class Attack(abc.ABC):
    """An attack configured once and applied to many batches.

    Args:
        name: label in result tables; defaults to a description of the attack.
        threat_model: 'oblivious' (crafted once per batch against the bare classifier and
            scored on every defense) or 'adaptive' (crafted against each defended model).
    """

    # False for query-only attacks (Square, SPSA): the audit's red flags compare them with the
    # gradient-based ones.
    uses_gradients: bool = True
    # The list `traced_loss` records into, while its block runs; None otherwise.
    _loss_trace: list[float] | None = None

    def __init__(self, name: str | None = None, threat_model: str = "oblivious") -> None:
        if threat_model not in THREAT_MODELS:
            raise ValueError(f"threat_model={threat_model!r}; choose one of {THREAT_MODELS}.")
        self._name = name
        self.threat_model = threat_model

    @property
    def name(self) -> str:
        """The label in result tables: `name` if one was given, else `default_name()`."""
        return self._name or self.default_name()

    @abc.abstractmethod
    def default_name(self) -> str:
        """A short description such as 'PGD-10'."""

    @abc.abstractmethod
    def perturb(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Adversarial images in [0, 1] against `model` (logits or log-probabilities out)."""

    def __call__(
        self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """Adversarial images from `perturb`, detached.

        `perturb` runs with gradients enabled and inference mode off, whatever the caller's
        context, and every submodule of `model` gets its own train/eval mode back afterwards.
        """
        # torchattacks restores the mode with model.train(), which would unfreeze submodules
        # (e.g. batch norm kept in eval); each module's own mode is restored here instead.
        with preserved_modes(model), torch.inference_mode(False), torch.enable_grad():
            return self.perturb(model, images, labels).detach()

    def against_defense(
        self,
        defense: nn.Module,
        images: torch.Tensor,
        labels: torch.Tensor,
        sample_index: torch.Tensor,
    ) -> torch.Tensor:
        """Adversarial images crafted against a defended model (the adaptive threat model).

        The default queries the defense as a model whose every call uses fresh random draws
        (expectation over the defense's randomness across the attack's queries); attacks that
        know more about the defense (EOT-PGD, MI's adaptive PGD) override it.
        """
        require_defense(defense, RandomizedDefense, self.name)
        return self(FreshDraws(defense), images, labels)

    def describe(self) -> dict:
        """Fields written next to this attack's results (budget, steps ...)."""
        return {}

    @contextlib.contextmanager
    def traced_loss(self) -> Iterator[list[float]]:
        """Within the block, the loss of each step of this attack is appended to the list yielded.

        The loss-trace hook: an attack that ascends a loss step by step reports each step's
        value with `record_loss` (EOT-PGD and MI's adaptive PGD: the loss summed over the
        batch); others (torchattacks' loops, the query-only attacks) leave the list empty. The
        audit's red flag "loss does not rise" reads it. Not re-entrant.
        """
        trace: list[float] = []
        self._loss_trace = trace
        try:
            yield trace
        finally:
            vars(self).pop("_loss_trace", None)

    def record_loss(self, loss: torch.Tensor) -> None:
        """Reports the loss (a scalar) of one step; kept only inside `traced_loss`.

        Outside a trace it does nothing, so an untraced attack never waits for the device.
        """
        if self._loss_trace is not None:
            self._loss_trace.append(float(loss.detach()))

"""Attacks declared in YAML: plain objects that craft adversarial batches against a model."""

import abc

import torch
from torch import nn

THREAT_MODELS = ("oblivious", "adaptive")


class Attack(abc.ABC):
    """An attack configured once and applied to many batches.

    Args:
        name: label in result tables; defaults to a description of the attack.
        threat_model: 'oblivious' (crafted once per batch against the bare classifier and
            scored on every defense) or 'adaptive' (crafted against each defended model).
    """

    def __init__(self, name: str | None = None, threat_model: str = "oblivious") -> None:
        if threat_model not in THREAT_MODELS:
            raise ValueError(f"threat_model={threat_model!r}; choose one of {THREAT_MODELS}.")
        self._name = name
        self.threat_model = threat_model

    @property
    def name(self) -> str:
        return self._name or self.default_name()

    @abc.abstractmethod
    def default_name(self) -> str:
        """A short description such as 'PGD-10'."""

    @abc.abstractmethod
    def perturb(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Adversarial images in [0, 1] against `model` (logits or log-probabilities out)."""

    def __call__(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor):
        # torchattacks restores the mode with model.train(), which would unfreeze submodules
        # (e.g. batch norm kept in eval); each module's own mode is restored here instead.
        modes = {module: module.training for module in model.modules()}
        try:
            with torch.inference_mode(False), torch.enable_grad():
                return self.perturb(model, images, labels).detach()
        finally:
            for module, training in modes.items():
                module.training = training

    def describe(self) -> dict:
        """Fields written next to this attack's results (budget, steps ...)."""
        return {}

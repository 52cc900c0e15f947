"""Inference-time defenses: nn.Modules that return log-probabilities."""

import torch
import torch.nn.functional as F
from torch import nn

from mixup_robust.defenses.pool import ClassPool


class Defense(nn.Module):
    """A classifier wrapped by an inference-time defense.

    A defense is configured first (YAML) and bound to a classifier and the sampling pool later
    (`bind`). Its forward returns log-probabilities, the log of the mean softmax over its
    executions, so that argmax is its prediction and cross-entropy on it is the loss an
    adaptive attack should ascend.

    Args:
        name: label in result tables; defaults to the defense's short name.
    """

    needs_pool: bool = False

    def __init__(self, name: str | None = None) -> None:
        super().__init__()
        self._name = name
        self.seed = 0
        self.classifier: nn.Module | None = None
        self.pool: ClassPool | None = None

    @property
    def name(self) -> str:
        return self._name or self.default_name()

    def default_name(self) -> str:
        return type(self).__name__

    def bind(
        self, classifier: nn.Module, pool: ClassPool | None = None, seed: int = 0
    ) -> "Defense":
        """Attaches the classifier (logits out), the pool and the seed of the random draws."""
        if self.needs_pool and pool is None:
            raise ValueError(f"Defense {self.name} needs a sampling pool (ClassPool).")
        self.classifier, self.pool, self.seed = classifier, pool, seed
        return self

    def forward(self, images: torch.Tensor, sample_index: torch.Tensor | None = None):
        """Log-probabilities (B, num_classes) for images in [0, 1].

        Args:
            images: float (B, C, H, W) in [0, 1].
            sample_index: int64 (B,) identities of the samples (their index in the test
                split); random draws are keyed on them, so a sample gets the same draws in any
                batch. Defaults to 0..B-1.
        """
        if self.classifier is None:
            raise RuntimeError(f"Defense {self.name} is not bound to a classifier; call bind().")
        if sample_index is None:
            sample_index = torch.arange(images.shape[0], device=images.device)
        return self.defend(images, sample_index)

    def defend(self, images: torch.Tensor, sample_index: torch.Tensor) -> torch.Tensor:
        """The defense proper; the default is no defense."""
        return F.log_softmax(self.classifier(images), dim=1)


class NoDefense(Defense):
    """The bare classifier: log-softmax of its logits."""

    def default_name(self) -> str:
        return "none"

"""Inference-time defenses: nn.Modules that return log-probabilities."""

import contextlib
import math
from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import override

from mixup_robust.defenses.chunking import default_chunk_size
from mixup_robust.defenses.pool import ClassPool
from mixup_robust.seeding import Stream, derive_seed


def log_mean_exp(log_probs: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """log(mean(exp(log_probs))) along `dim`, computed stably: the log of a mean softmax."""
    return torch.logsumexp(log_probs, dim=dim) - math.log(log_probs.shape[dim])


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
    chunk_size: int | None = None
    """Images per forward pass of the defenses that batch executions; None: from memory."""
    # Whether outputs depend on random draws (the audit repeats randomized defenses over
    # seeds). True unless a defense declares otherwise, so an unknown one is never under-tested.
    randomized: bool = True

    def __init__(self, name: str | None = None) -> None:
        super().__init__()
        self._name = name
        self.seed = 0
        self.classifier: nn.Module | None = None
        self.pool: ClassPool | None = None

    @property
    def name(self) -> str:
        """The label in result tables: `name` if one was given, else `default_name()`."""
        return self._name or self.default_name()

    def default_name(self) -> str:
        """The label when no `name` is given; subclasses name their method, this the class."""
        return type(self).__name__

    def chunk_length(self, images: torch.Tensor) -> int:
        """Images per forward pass: the `chunk_size` set, or one picked from device memory."""
        return (
            self.chunk_size
            if self.chunk_size is not None
            else default_chunk_size(images.device, images.shape[-3:])
        )

    def bind(
        self, classifier: nn.Module, pool: ClassPool | None = None, seed: int = 0
    ) -> "Defense":
        """Attaches the classifier (logits out), the pool and the seed of the random draws."""
        if self.needs_pool and pool is None:
            raise ValueError(f"Defense {self.name} needs a sampling pool (ClassPool).")
        self.classifier, self.pool, self.seed = classifier, pool, seed
        return self

    def forward(
        self, images: torch.Tensor, sample_index: torch.Tensor | None = None
    ) -> torch.Tensor:
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

    def execution_log_probs(
        self, images: torch.Tensor, sample_index: torch.Tensor, executions: torch.Tensor
    ) -> torch.Tensor:
        """Log-probabilities of single executions, (B, len(executions), C), differentiable.

        Randomized defenses return one output per execution number (their draws keyed by it);
        EOT attacks average gradients over them. This default, for deterministic or composite
        defenses, repeats the whole output.
        """
        output = self(images, sample_index)
        return output.unsqueeze(1).expand(-1, len(executions), -1)

    @contextlib.contextmanager
    def fresh_draw(self, draw: int) -> Iterator[None]:
        """Within the block, every random draw (of this defense and its parts) is draw `draw`.

        Draw 0 is the one results are scored with; attacks use draws >= 1, so the randomness
        an adaptive attack sees is independent of the randomness it is scored with.
        """
        with redrawn([self], Stream.ATTACK_DRAW, draw):
            yield


@contextlib.contextmanager
def redrawn(modules: Iterable[nn.Module], stream: Stream, number: int) -> Iterator[None]:
    """Within the block every defense in `modules` (and its parts) draws anew: draw `number`.

    The one way a defense is redrawn, for an attack (`Defense.fresh_draw`, stream
    `ATTACK_DRAW`) and for a repeated trial (`evaluation.trials.defense_trial`, stream
    `TRIAL`): number 0 keeps every seed; number n > 0 replaces each part's seed by
    `derive_seed(seed, stream, n)`. The seeds are restored after the block, also on error.
    """
    parts = [m for module in modules for m in module.modules() if isinstance(m, Defense)]
    seeds = [part.seed for part in parts]
    if number != 0:
        for part in parts:
            part.seed = derive_seed(part.seed, stream, number)
    try:
        yield
    finally:
        for part, seed in zip(parts, seeds, strict=True):
            part.seed = seed


class NoDefense(Defense):
    """The bare classifier: log-softmax of its logits."""

    randomized = False

    @override
    def default_name(self) -> str:
        return "none"

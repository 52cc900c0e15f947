"""Mixup Inference (Pang, Xu, Zhu, ICLR 2020): MI-PL and MI-OL."""

from typing import Literal

import torch
import torch.nn.functional as F
from typing_extensions import override

from mixup_robust.defenses.base import Defense, log_mean_exp
from mixup_robust.mixing import interpolate
from mixup_robust.seeding import Stream, keyed_uniform


class MixupInference(Defense):
    """Average of softmax(f(lambda x + (1 - lambda) x_s)) over N pool partners x_s.

    The B x N mixed inputs run through the classifier as batches of at most `chunk_size`
    images, never one image or one execution at a time.

    Args:
        partner_label: 'predicted' (MI-PL: x_s from the class predicted for x) or 'other'
            (MI-OL: x_s from a class drawn uniformly among the others).
        mixup_ratio: lambda, the weight of the input (MI paper: 0.5 for mixup models, 0.6 for
            interpolated AT; Tables 4 and 5).
        n_executions: N, the number of partners averaged (30 in the paper).
        chunk_size: the largest number of mixed images per forward pass; None picks it from
            the device's free memory (`mixup_robust.defenses.chunking`).
        name: label in result tables; defaults to MI-PL or MI-OL.
    """

    needs_pool = True
    # The mixed input is lambda x + (1 - lambda) x_s in pixel space (adaptive attacks bound
    # their per-copy perturbations with it).
    mixes_pixels = True

    def __init__(
        self,
        partner_label: Literal["predicted", "other"] = "other",
        mixup_ratio: float = 0.5,
        n_executions: int = 30,
        chunk_size: int | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        if partner_label not in ("predicted", "other"):
            raise ValueError(f"partner_label={partner_label!r}; use 'predicted' or 'other'.")
        if not 0 <= mixup_ratio <= 1:
            raise ValueError(f"mixup_ratio={mixup_ratio} must lie in [0, 1].")
        if n_executions < 1 or (chunk_size is not None and chunk_size < 1):
            raise ValueError("n_executions and chunk_size must be at least 1.")
        self.partner_label = partner_label
        self.mixup_ratio = mixup_ratio
        self.n_executions = n_executions
        self.chunk_size = chunk_size

    @override
    def default_name(self) -> str:
        return "MI-PL" if self.partner_label == "predicted" else "MI-OL"

    def partner_classes(
        self,
        predicted: torch.Tensor,
        sample_index: torch.Tensor,
        executions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Class of each partner, (B, E): the prediction (PL) or uniform over the others (OL)."""
        executions = self._executions(executions, predicted.device)
        if self.partner_label == "predicted":
            return predicted[:, None].expand(-1, len(executions))
        num_classes = self.pool.num_classes
        uniform = keyed_uniform(self.seed, sample_index[:, None], executions, Stream.MI_CLASS)
        other = torch.minimum((uniform * (num_classes - 1)).long(), torch.tensor(num_classes - 2))
        return other + (other >= predicted[:, None]).long()

    def partners(
        self,
        predicted: torch.Tensor,
        sample_index: torch.Tensor,
        executions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Pool positions of the partners of each sample, (B, E); E = N by default."""
        executions = self._executions(executions, predicted.device)
        classes = self.partner_classes(predicted, sample_index, executions)
        uniform = keyed_uniform(self.seed, sample_index[:, None], executions, Stream.MI_MEMBER)
        return self.pool.index(classes, uniform)

    def _executions(self, executions: torch.Tensor | None, device: torch.device) -> torch.Tensor:
        if executions is None:
            return torch.arange(self.n_executions, device=device)
        return executions.to(device)

    @override
    def defend(self, images: torch.Tensor, sample_index: torch.Tensor) -> torch.Tensor:
        return log_mean_exp(self.execution_log_probs(images, sample_index, None))

    def execution_log_probs(
        self,
        images: torch.Tensor,
        sample_index: torch.Tensor,
        executions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Log-softmax of f(lambda x + (1 - lambda) x_s) for each execution's partner, (B, E, C)."""
        with torch.no_grad():
            predicted = self.classifier(images).argmax(dim=1)
        return self.mixed_log_probs(images, self.partners(predicted, sample_index, executions))

    def average_over_partners(self, images: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
        """Log of the mean over n of softmax(f(lambda x + (1 - lambda) pool[partners[:, n]])).

        Returns:
            Log-probabilities, (B, C).
        """
        return log_mean_exp(self.mixed_log_probs(images, partners))

    def mixed_log_probs(self, images: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
        """Log-softmax of f(lambda x + (1 - lambda) pool[partners[:, n]]) for each n, (B, N, C).

        Args:
            images: (B, C, H, W), or (B, N, C, H, W) with one input per copy (an adaptive
                attack's per-copy perturbations).
            partners: pool positions, (B, N).

        Differentiable in `images`; the B x N mixed inputs run in chunks of `chunk_size`.
        """
        batch, n_executions = partners.shape
        rows = torch.arange(batch, device=images.device).repeat_interleave(n_executions)
        sources = images.flatten(0, 1) if images.dim() == 5 else None
        flat_partners = partners.reshape(-1)
        log_probs = []
        size = self.chunk_length(images)
        for start in range(0, batch * n_executions, size):
            chunk = slice(start, start + size)
            inputs = images[rows[chunk]] if sources is None else sources[chunk]
            ratio = torch.full((len(inputs),), self.mixup_ratio, device=images.device)
            mixed = interpolate(inputs, self.pool.fetch(flat_partners[chunk]), ratio)
            log_probs.append(F.log_softmax(self.classifier(mixed), dim=1))
        return torch.cat(log_probs).view(batch, n_executions, -1)

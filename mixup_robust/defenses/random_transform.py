"""The base of the randomized input-transformation defenses, and what their draws share.

`RandomTransformDefense` averages softmax(f(T(x))) over N random transformations T, drawn per
(sample, execution) from keyed uniforms on numbered streams (`seeding.Stream.TRANSFORM_A`
.. `TRANSFORM_E`; a subclass that needs another adds it to `Stream`, which refuses a number
taken).
The window transforms (resize-pad, crop-resize, crop-pad) turn those uniforms into sizes and
offsets (`uniform_sizes`, `uniform_offsets`) and index s x s windows (`window_indices`).
"""

import abc

import torch
import torch.nn.functional as F
from typing_extensions import override

from mixup_robust.defenses.base import Defense, log_mean_exp
from mixup_robust.seeding import Stream, keyed_uniform


class RandomTransformDefense(Defense, abc.ABC):
    """Log of the mean softmax of the classifier over N random transformations of the input.

    Args:
        n_executions: N, the number of random transformations averaged (30 in the MI paper).
        chunk_size: the largest number of transformed images per forward pass; None picks it
            from the device's free memory (`mixup_robust.defenses.chunking`).
        name: label in result tables.
    """

    def __init__(
        self, n_executions: int = 30, chunk_size: int | None = None, name: str | None = None
    ) -> None:
        super().__init__(name)
        if n_executions < 1 or (chunk_size is not None and chunk_size < 1):
            raise ValueError("n_executions and chunk_size must be at least 1.")
        self.n_executions = n_executions
        self.chunk_size = chunk_size

    def uniform(
        self, sample: torch.Tensor, execution: torch.Tensor, stream: Stream
    ) -> torch.Tensor:
        """Keyed uniforms in [0, 1), float64, one per (sample[m], execution[m]) pair, (M,)."""
        return keyed_uniform(self.seed, sample, execution, stream)

    @abc.abstractmethod
    def transform(
        self, images: torch.Tensor, sample: torch.Tensor, execution: torch.Tensor
    ) -> torch.Tensor:
        """The random transformation of images[m] for (sample[m], execution[m]), (M, C, H, W)."""

    @override
    def defend(self, images: torch.Tensor, sample_index: torch.Tensor) -> torch.Tensor:
        executions = torch.arange(self.n_executions, device=images.device)
        return log_mean_exp(self.execution_log_probs(images, sample_index, executions))

    def execution_log_probs(
        self, images: torch.Tensor, sample_index: torch.Tensor, executions: torch.Tensor
    ) -> torch.Tensor:
        """Log-softmax of f(T_e(x)) for each execution number e, (B, E, C), chunked."""
        batch, n_executions = images.shape[0], len(executions)
        rows = torch.arange(batch, device=images.device).repeat_interleave(n_executions)
        executions = executions.to(images.device).repeat(batch)
        samples = sample_index.to(images.device)[rows]
        log_probs = []
        size = self.chunk_length(images)
        for start in range(0, batch * n_executions, size):
            chunk = slice(start, start + size)
            transformed = self.transform(images[rows[chunk]], samples[chunk], executions[chunk])
            log_probs.append(F.log_softmax(self.classifier(transformed), dim=1))
        return torch.cat(log_probs).view(batch, n_executions, -1)


def uniform_sizes(uniform: torch.Tensor, min_size: int, max_size: int) -> torch.Tensor:
    """Integer sizes uniform in [min_size, max_size] (both included), int64."""
    span = max_size - min_size + 1
    return min_size + torch.minimum((uniform * span).long(), torch.tensor(span - 1))


def uniform_offsets(uniform: torch.Tensor, room: torch.Tensor) -> torch.Tensor:
    """Integer offsets uniform in [0, room] (both included), int64."""
    return torch.minimum((uniform * (room + 1)).long(), room)


def window_indices(
    top: torch.Tensor, left: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Index tensors (M, 1, 1), (M, s, 1), (M, 1, s) of the s x s window at (top, left)."""
    span = torch.arange(size, device=top.device)
    rows = torch.arange(len(top), device=top.device)[:, None, None]
    return rows, (top[:, None] + span)[:, :, None], (left[:, None] + span)[:, None, :]

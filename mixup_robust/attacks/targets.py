"""Target classes for targeted attacks, drawn without per-sample Python loops."""

import torch
from torch import nn


@torch.no_grad()
def num_classes_of(model: nn.Module, images: torch.Tensor) -> int:
    """The model's output size, from one forward pass on the first image of the batch."""
    return model(images[:1]).shape[1]


def random_targets(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """A class drawn uniformly among the `num_classes - 1` classes other than each label.

    Drawn with torch's global RNG (the evaluation seeds it per batch), as the label plus a
    uniform offset in [1, num_classes - 1], modulo num_classes: never the label itself.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes}; a target needs at least two classes.")
    offsets = torch.randint(1, num_classes, labels.shape, device=labels.device)
    return (labels + offsets) % num_classes


@torch.no_grad()
def second_most_likely(outputs: torch.Tensor) -> torch.Tensor:
    """The class with the second highest output per row (logits or log-probabilities)."""
    if outputs.shape[1] < 2:
        raise ValueError("second_most_likely needs at least two classes.")
    return outputs.topk(2, dim=1).indices[:, 1]

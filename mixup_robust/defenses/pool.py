"""The Mixup Inference sampling pool: clean training images bucketed by class."""

import torch
from torch import nn


class ClassPool(nn.Module):
    """Clean images sorted by class, stored as uint8 buffers that follow the module's device.

    Args:
        images: uint8 (M, C, H, W) clean training images.
        labels: int64 (M,) their labels; every class in [0, num_classes) needs one image.
        num_classes: number of classes of the classifier.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> None:
        super().__init__()
        if images.dtype != torch.uint8 or images.dim() != 4 or len(images) != len(labels):
            raise ValueError("ClassPool needs uint8 images (M, C, H, W) and M labels.")
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"Pool labels must lie in [0, {num_classes}).")
        order = torch.argsort(labels, stable=True)
        labels = labels[order]
        counts = torch.bincount(labels, minlength=num_classes)
        if len(counts) > num_classes or (counts == 0).any():
            missing = torch.nonzero(counts[:num_classes] == 0).flatten().tolist()
            raise ValueError(
                f"The pool must hold images of every class 0..{num_classes - 1}; "
                f"missing {missing or 'none'}, or labels beyond the range."
            )
        self.num_classes = num_classes
        self.register_buffer("images", images[order].contiguous(), persistent=False)
        self.register_buffer("labels", labels, persistent=False)
        self.register_buffer("counts", counts, persistent=False)
        self.register_buffer("offsets", torch.cumsum(counts, 0) - counts, persistent=False)

    def index(self, classes: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
        """Pool positions of one member of each requested class.

        Args:
            classes: int64 class of each draw, any shape.
            uniform: floats in [0, 1) of the same shape that pick the member.
        """
        count = self.counts[classes]
        member = torch.minimum((uniform * count).long(), count - 1)
        return self.offsets[classes] + member

    def fetch(self, positions: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 1] at the given pool positions."""
        return self.images[positions].float().div_(255.0)

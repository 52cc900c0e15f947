"""A small class pool, a linear classifier and a recorder for the defense tests."""

import math

import torch
from torch import nn

from mixup_robust.defenses import ClassPool, MixupInference

NUM_CLASSES = 4
COUNTS = (3, 5, 2, 4)  # members per class in the pool (unequal on purpose)
SHAPE = (1, 8, 8)


class Recorder(nn.Module):
    """Wraps a classifier and keeps a copy of every batch it sees and of its logits."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.inputs: list[torch.Tensor] = []
        self.outputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x)
        self.inputs.append(x.detach().clone())
        self.outputs.append(logits.detach().clone())
        return logits

    def reset(self) -> None:
        self.inputs.clear()
        self.outputs.clear()


def linear_net(seed: int = 0) -> nn.Module:
    """A seeded linear classifier of SHAPE images into NUM_CLASSES classes, in eval mode."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(SHAPE), NUM_CLASSES)).eval()


def pool_data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images and shuffled labels with COUNTS members per class."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(COUNTS)])
    labels = labels[torch.randperm(len(labels), generator=generator)]
    images = torch.randint(0, 256, (len(labels), *SHAPE), generator=generator, dtype=torch.uint8)
    return images, labels


def class_pool() -> ClassPool:
    """A pool of COUNTS members per class (`pool_data`)."""
    return ClassPool(*pool_data(), num_classes=NUM_CLASSES)


def seeded_images() -> torch.Tensor:
    """Five seeded images of SHAPE in [0, 1)."""
    return torch.rand(5, *SHAPE, generator=torch.Generator().manual_seed(1))


def bound_mi(pool, classifier=None, seed=0, **kwargs) -> MixupInference:
    """MixupInference(**kwargs) bound to `classifier` (default: `linear_net()`) and `pool`."""
    defense = MixupInference(**kwargs)
    return defense.bind(classifier if classifier is not None else linear_net(), pool, seed=seed)

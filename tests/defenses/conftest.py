"""Fixtures of the defense tests: a small class pool and five images."""

import pytest
import torch

from mixup_robust.defenses import ClassPool
from tests.helpers.defenses import class_pool, seeded_images


@pytest.fixture
def pool() -> ClassPool:
    return class_pool()


@pytest.fixture
def images() -> torch.Tensor:
    return seeded_images()

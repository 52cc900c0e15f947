"""Inference-time defenses as nn.Modules that return log-probabilities."""

from mixup_robust.defenses.base import Defense, NoDefense
from mixup_robust.defenses.mixup_inference import MixupInference
from mixup_robust.defenses.pool import ClassPool

__all__ = ["ClassPool", "Defense", "MixupInference", "NoDefense"]

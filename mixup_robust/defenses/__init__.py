"""Inference-time defenses as nn.Modules that return log-probabilities."""

from mixup_robust.defenses.base import Defense, NoDefense, redrawn
from mixup_robust.defenses.crop_pad import RandomCropPad
from mixup_robust.defenses.input_transforms import (
    GaussianNoise,
    RandomCropResize,
    RandomResizePad,
    RandomRotation,
)
from mixup_robust.defenses.mixup_inference import MixupInference
from mixup_robust.defenses.mixup_inference_combined import MixupInferenceCombined
from mixup_robust.defenses.pool import ClassPool
from mixup_robust.defenses.varmi import VarMixupInference

__all__ = [
    "ClassPool",
    "Defense",
    "GaussianNoise",
    "MixupInference",
    "MixupInferenceCombined",
    "NoDefense",
    "RandomCropPad",
    "RandomCropResize",
    "RandomResizePad",
    "RandomRotation",
    "VarMixupInference",
    "redrawn",
]

"""LightningModules that train classifiers."""

from mixup_robust.training.base import ClassifierModule, NetFactory, build_classifier
from mixup_robust.training.erm import ERM
from mixup_robust.training.mixup import Mixup

__all__ = ["ERM", "ClassifierModule", "Mixup", "NetFactory", "build_classifier"]

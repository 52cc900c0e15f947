"""LightningModules that train classifiers."""

from mixup_robust.training.adversarial_training import AdversarialTraining
from mixup_robust.training.aomixup import AdversariallyOptimizedMixup
from mixup_robust.training.base import ClassifierModule
from mixup_robust.training.erm import ERM
from mixup_robust.training.interpolated_at import InterpolatedAT
from mixup_robust.training.last_checkpoint import LastCheckpoint
from mixup_robust.training.manifold_mixup import ManifoldMixup
from mixup_robust.training.mixup import Mixup
from mixup_robust.training.optimization import (
    ClassicMultiStepLR,
    ClassifierSGD,
    CosineSchedule,
    OneCycleSchedule,
    RunLengthSchedule,
    ScheduledModule,
)
from mixup_robust.training.progress_bar import RichBar, ThrottledProgressBar
from mixup_robust.training.trades import TRADES
from mixup_robust.training.vae import MMDVAE
from mixup_robust.training.varmixup import VarERM, VarMixup

__all__ = [
    "ERM",
    "MMDVAE",
    "TRADES",
    "AdversarialTraining",
    "AdversariallyOptimizedMixup",
    "ClassicMultiStepLR",
    "ClassifierModule",
    "ClassifierSGD",
    "CosineSchedule",
    "InterpolatedAT",
    "LastCheckpoint",
    "ManifoldMixup",
    "Mixup",
    "OneCycleSchedule",
    "RichBar",
    "RunLengthSchedule",
    "ScheduledModule",
    "ThrottledProgressBar",
    "VarERM",
    "VarMixup",
]

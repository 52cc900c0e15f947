"""LightningModules that train classifiers."""

# LastCheckpoint, RichBar and ThrottledProgressBar are the run room's (mixup_robust.run); they
# are re-exported here because configs and saved config.yaml files name them by this path.
from mixup_robust.run.last_checkpoint import LastCheckpoint
from mixup_robust.run.progress_bar import RichBar, ThrottledProgressBar
from mixup_robust.training.adversarial_training import AdversarialTraining
from mixup_robust.training.aomixup import AdversariallyOptimizedMixup
from mixup_robust.training.base import ClassifierModule
from mixup_robust.training.erm import ERM
from mixup_robust.training.interpolated_at import InterpolatedAT
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

"""Checkpoint files: reading them safely, and the classifier, VAE or external model they hold.

The one home of checkpoint loading. It builds plain `nets` from a file and imports nothing
of the package but `nets` and `trusted_imports`, so every room that needs a trained model
(training's VarMixup, the VarMI defense, evaluation, the run's resume and guards) reads it
here without importing the training methods.
"""

from mixup_robust.checkpoints.classifier import load_classifier
from mixup_robust.checkpoints.external import ExternalClassifier, load_any_classifier
from mixup_robust.checkpoints.file import (
    check_finite_weights,
    load_checkpoint,
    non_finite_entries,
    read_checkpoint,
)
from mixup_robust.checkpoints.vae import FrozenVAE, load_vae

__all__ = [
    "ExternalClassifier",
    "FrozenVAE",
    "check_finite_weights",
    "load_any_classifier",
    "load_checkpoint",
    "load_classifier",
    "load_vae",
    "non_finite_entries",
    "read_checkpoint",
]

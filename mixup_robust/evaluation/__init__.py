"""Evaluation of trained classifiers: defenses under attacks, audits, VarMixup measurements."""

# load_classifier and ExternalClassifier live in mixup_robust.checkpoints; configs and saved
# config.yaml files name `mixup_robust.evaluation.ExternalClassifier`, which stays valid.
from mixup_robust.checkpoints import ExternalClassifier, load_classifier
from mixup_robust.evaluation.audit import DefenseAudit, RedFlagThresholds
from mixup_robust.evaluation.corruption import CorruptionEvaluation
from mixup_robust.evaluation.defense import DefenseEvaluation, ParameterSweep
from mixup_robust.evaluation.linearity import LocalLinearityEvaluation, local_linearity_error

__all__ = [
    "CorruptionEvaluation",
    "DefenseAudit",
    "DefenseEvaluation",
    "ExternalClassifier",
    "LocalLinearityEvaluation",
    "ParameterSweep",
    "RedFlagThresholds",
    "load_classifier",
    "local_linearity_error",
]

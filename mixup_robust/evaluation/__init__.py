"""Evaluation of trained classifiers: defenses under attacks, audits, VarMixup measurements."""

from mixup_robust.evaluation.audit import DefenseAudit, RedFlagThresholds
from mixup_robust.evaluation.checkpoint import load_classifier
from mixup_robust.evaluation.corruption import CorruptionEvaluation
from mixup_robust.evaluation.defense import DefenseEvaluation, ParameterSweep
from mixup_robust.evaluation.external import ExternalClassifier
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

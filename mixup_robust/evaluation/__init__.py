"""Evaluation of trained classifiers: defenses under attacks, audits, VarMixup measurements."""

from mixup_robust.evaluation.audit import DefenseAudit
from mixup_robust.evaluation.checkpoint import load_classifier
from mixup_robust.evaluation.corruption_evaluation import CorruptionEvaluation
from mixup_robust.evaluation.defense_evaluation import DefenseEvaluation
from mixup_robust.evaluation.external import ExternalClassifier
from mixup_robust.evaluation.linearity_evaluation import LocalLinearityEvaluation
from mixup_robust.evaluation.local_linearity import local_linearity_error
from mixup_robust.evaluation.red_flags import RedFlagThresholds
from mixup_robust.evaluation.sweep import ParameterSweep

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

"""Evaluation of defended classifiers under attacks: the module, its loader and reports."""

from mixup_robust.evaluation.checkpoint import load_classifier
from mixup_robust.evaluation.module import DefenseEvaluation
from mixup_robust.evaluation.sweep import ParameterSweep

__all__ = ["DefenseEvaluation", "ParameterSweep", "load_classifier"]

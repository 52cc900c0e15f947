"""Evaluation of defended classifiers under attacks: the module, its loader and reports."""

from mixup_robust.evaluation.checkpoint import load_classifier
from mixup_robust.evaluation.module import DefenseEvaluation

__all__ = ["DefenseEvaluation", "load_classifier"]

"""Defense evaluation: every defense under every attack, with sweeps, trials and figures."""

from mixup_robust.evaluation.defense.module import DefenseEvaluation
from mixup_robust.evaluation.defense.sweep import ParameterSweep

__all__ = ["DefenseEvaluation", "ParameterSweep"]

"""The local linearity error of a classifier's loss against eps (VarMixup paper, Fig. 4)."""

from mixup_robust.evaluation.linearity.local_linearity import local_linearity_error
from mixup_robust.evaluation.linearity.module import LocalLinearityEvaluation

__all__ = ["LocalLinearityEvaluation", "local_linearity_error"]

"""Accuracy under common corruptions (VarMixup paper, Table 4)."""

from mixup_robust.evaluation.corruption.module import CorruptionEvaluation

__all__ = ["CorruptionEvaluation"]

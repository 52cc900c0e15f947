"""The defense audit: a ladder of attacks per defense, worst case, error bars and red flags."""

from mixup_robust.evaluation.audit.module import DefenseAudit
from mixup_robust.evaluation.audit.red_flags import RedFlagThresholds

__all__ = ["DefenseAudit", "RedFlagThresholds"]

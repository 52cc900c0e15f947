"""95 % intervals of the measurements: Wilson for an accuracy, Hanley-McNeil for an AUROC.

Shared by the measurements (the audit's statistics, the defense evaluation's console tables).
All take counts, so they work on the summed, DDP-exact states of an evaluation; scipy does
the binomial arithmetic.
"""

import math

from scipy.stats import binomtest, norm

CONFIDENCE = 0.95


def wilson_interval(
    correct: int, total: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Wilson score interval of an accuracy `correct / total` (fractions in [0, 1]).

    Wilson rather than the normal approximation: it stays inside [0, 1] and keeps its coverage
    at accuracies near 0 or 1, where robust accuracies often are. With no samples the interval
    is the whole range [0, 1].
    """
    if not 0 <= correct <= total:
        raise ValueError(f"correct={correct} must lie in [0, total={total}].")
    if total == 0:
        return 0.0, 1.0
    interval = binomtest(int(correct), int(total)).proportion_ci(confidence, method="wilson")
    return float(interval.low), float(interval.high)


def auroc_interval(
    auroc: float, positives: int, negatives: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Normal interval of an AUROC from Hanley and McNeil's (1982) standard error, in [0, 1].

    Args:
        auroc: the area, in [0, 1].
        positives: how many positive scores (adversarial inputs) it compared.
        negatives: how many negative scores (clean inputs).
        confidence: the interval's coverage.
    """
    if not 0 <= auroc <= 1 or positives < 1 or negatives < 1:
        raise ValueError(f"auroc={auroc} needs [0, 1] and at least one score of each kind.")
    q1, q2 = auroc / (2 - auroc), 2 * auroc**2 / (1 + auroc)
    variance = (
        auroc * (1 - auroc) + (positives - 1) * (q1 - auroc**2) + (negatives - 1) * (q2 - auroc**2)
    ) / (positives * negatives)
    half = norm.ppf(0.5 + confidence / 2) * math.sqrt(max(variance, 0.0))
    return max(0.0, auroc - half), min(1.0, auroc + half)

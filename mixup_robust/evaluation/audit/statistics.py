"""Error bars and tests for accuracies: Wilson intervals, exact McNemar, mean +- std over trials.

All functions take counts (integers), so they work on the summed, DDP-exact states of an
evaluation. scipy does the binomial arithmetic.
"""

import math
import statistics
from collections.abc import Sequence

from scipy.stats import binomtest

# The intervals live in the base (evaluation/intervals.py), shared with the other measurements.
from mixup_robust.evaluation.intervals import CONFIDENCE
from mixup_robust.evaluation.intervals import wilson_interval as wilson_interval


def mcnemar_exact(only_first: int, only_second: int, alternative: str = "two-sided") -> float:
    """p-value of the exact McNemar test on paired outcomes (a binomial test of the discordant).

    Args:
        only_first: samples the first method gets right and the second wrong.
        only_second: samples the second method gets right and the first wrong.
        alternative: 'two-sided', or 'greater' (H1: the first is right more often).

    Samples both get right or both get wrong carry no information about which is better, so
    only the discordant pairs enter; with none, the p-value is 1.
    """
    discordant = int(only_first) + int(only_second)
    if discordant == 0:
        return 1.0
    return float(binomtest(int(only_first), discordant, 0.5, alternative=alternative).pvalue)


def mean_and_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1) of per-trial values; std 0 for one trial."""
    if not values:
        return math.nan, math.nan
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def compare_to_baseline(
    only_defense: int, only_baseline: int, alpha: float = 1 - CONFIDENCE
) -> tuple[str, float]:
    """Verdict of 'the defense beats the baseline' from paired per-sample robustness.

    Returns ('better' | 'worse' | 'within noise', two-sided exact McNemar p-value): a defense
    is ranked above or below the baseline only when the test rejects equality at `alpha`.
    """
    p_value = mcnemar_exact(only_defense, only_baseline)
    if p_value >= alpha:
        return "within noise", p_value
    return ("better" if only_defense > only_baseline else "worse"), p_value

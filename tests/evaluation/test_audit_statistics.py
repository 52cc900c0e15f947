"""Wilson intervals, the exact McNemar test and the red-flag rules on counts built by hand."""

import math

import pytest

from mixup_robust.evaluation.audit.red_flags import (
    GRADIENT_FREE,
    OBLIVIOUS,
    WHITE_BOX,
    LadderCounts,
    RedFlagThresholds,
    RungSpec,
    attack_above_clean,
    loss_does_not_rise,
    red_flags,
    stronger_attack_raises_accuracy,
    unbounded_attack_leaves_accuracy,
    weaker_threat_model_beats_white_box,
)
from mixup_robust.evaluation.audit.statistics import (
    compare_to_baseline,
    mcnemar_exact,
    mean_and_std,
    wilson_interval,
)


def test_wilson_interval_matches_the_closed_form_and_stays_in_range():
    correct, total, z = 30, 100, 1.959963984540054
    p = correct / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z / (1 + z * z / total) * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    assert wilson_interval(correct, total) == pytest.approx((centre - half, centre + half))
    low, high = wilson_interval(0, 50)
    assert low == 0 and 0 < high < 0.1  # never below 0, unlike the normal approximation
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="must lie in"):
        wilson_interval(5, 3)


def test_exact_mcnemar_is_the_binomial_test_of_the_discordant_pairs():
    # 10 discordant pairs all one way: p = 2 * 0.5 ** 10 (two-sided), 0.5 ** 10 (one-sided).
    assert mcnemar_exact(10, 0) == pytest.approx(2 * 0.5**10)
    assert mcnemar_exact(10, 0, alternative="greater") == pytest.approx(0.5**10)
    assert mcnemar_exact(0, 10, alternative="greater") == pytest.approx(1.0)
    assert mcnemar_exact(0, 0) == 1.0
    assert compare_to_baseline(10, 0) == ("better", pytest.approx(2 * 0.5**10))
    assert compare_to_baseline(0, 10)[0] == "worse"
    assert compare_to_baseline(3, 1)[0] == "within noise"  # 4 pairs cannot show anything


def test_mean_and_std_over_trials():
    assert mean_and_std([0.2, 0.4]) == pytest.approx((0.3, math.sqrt(0.02)))
    assert mean_and_std([0.5]) == (0.5, 0.0)


def counts(correct: list[list[bool]], **extra) -> LadderCounts:
    """Counts of per-sample outcomes: correct[i][s] for clean (i = 0) and each rung."""
    pairs = [[sum(a and not b for a, b in zip(x, y, strict=True)) for y in correct]
             for x in correct]  # fmt: skip
    loss = extra.pop("loss_rise", [None] * (len(correct) - 1))
    return LadderCounts(len(correct[0]), [sum(row) for row in correct], pairs, loss, **extra)


N = 100
THRESHOLDS = RedFlagThresholds()


def outcomes(right: int) -> list[bool]:
    return [True] * right + [False] * (N - right)


def test_more_steps_raising_accuracy_is_flagged_and_noise_is_not():
    weak = RungSpec("EOT-10", WHITE_BOX, ("EOTPGD", 0.1, 0.03), steps=10, n_samples=1)
    strong = RungSpec("EOT-50", WHITE_BOX, ("EOTPGD", 0.1, 0.03), steps=50, n_samples=1)
    flagged = counts([outcomes(90), outcomes(20), outcomes(40)])
    flags = stronger_attack_raises_accuracy([weak, strong], flagged, THRESHOLDS)
    assert [(f.rule, f.rung) for f in flags] == [("stronger attack raises accuracy", "EOT-50")]
    assert stronger_attack_raises_accuracy([weak, strong], counts(
        [outcomes(90), outcomes(20), outcomes(21)]), THRESHOLDS) == []  # fmt: skip
    other_budget = RungSpec("EOT-50", WHITE_BOX, ("EOTPGD", 0.2, 0.03), steps=50, n_samples=1)
    assert stronger_attack_raises_accuracy([weak, other_budget], flagged, THRESHOLDS) == []


def test_gradient_free_or_transfer_beating_white_box_is_flagged():
    rungs = [RungSpec("PGD-10", OBLIVIOUS), RungSpec("EOT", WHITE_BOX),
             RungSpec("Square", GRADIENT_FREE)]  # fmt: skip
    flags = weaker_threat_model_beats_white_box(
        rungs, counts([outcomes(95), outcomes(30), outcomes(80), outcomes(10)]), THRESHOLDS
    )
    assert [(f.rule, f.rung) for f in flags] == [
        ("oblivious attack beats white-box", "PGD-10"),
        ("gradient-free attack beats white-box", "Square"),
    ]
    fine = counts([outcomes(95), outcomes(60), outcomes(20), outcomes(25)])
    assert weaker_threat_model_beats_white_box(rungs, fine, THRESHOLDS) == []


def test_unbounded_budget_leaving_accuracy_is_flagged():
    rungs = [RungSpec("EOT", WHITE_BOX)]
    base = [outcomes(90), outcomes(10)]
    assert unbounded_attack_leaves_accuracy(rungs, counts(base, unbounded=(40, 100)), THRESHOLDS)
    assert not unbounded_attack_leaves_accuracy(rungs, counts(base, unbounded=(1, 100)), THRESHOLDS)
    assert not unbounded_attack_leaves_accuracy(rungs, counts(base), THRESHOLDS)  # not run


def test_loss_that_does_not_rise_is_flagged():
    rungs = [RungSpec("EOT-10", WHITE_BOX, steps=10), RungSpec("EOT-20", WHITE_BOX, steps=20)]
    ladder = counts([outcomes(90), outcomes(30), outcomes(30)],
                    loss_rise=[(0.0, 50), (25.0, 50)])  # fmt: skip
    flags = loss_does_not_rise(rungs, ladder, THRESHOLDS)
    assert [f.rung for f in flags] == ["EOT-10"]


def test_accuracy_under_attack_above_clean_is_flagged():
    rungs = [RungSpec("PGD", OBLIVIOUS)]
    assert attack_above_clean(rungs, counts([outcomes(50), outcomes(80)]), THRESHOLDS)
    assert not attack_above_clean(rungs, counts([outcomes(50), outcomes(51)]), THRESHOLDS)
    healthy = counts([outcomes(90), outcomes(20)], unbounded=(0, 100))
    assert red_flags(rungs, healthy, THRESHOLDS) == []

"""95 % intervals of accuracies and AUROCs, and the defense tables that print them."""

import math

import pytest
from rich.console import Console

from mixup_robust.evaluation.defense.tables import cell_text, print_table
from mixup_robust.evaluation.intervals import auroc_interval, wilson_interval


def test_the_auroc_interval_is_hanley_and_mcneils():
    area, n = 0.42, 359
    q1, q2 = area / (2 - area), 2 * area**2 / (1 + area)
    se = math.sqrt((area * (1 - area) + (n - 1) * (q1 - area**2) + (n - 1) * (q2 - area**2)) / n**2)
    assert auroc_interval(area, n, n) == pytest.approx((area - 1.959964 * se, area + 1.959964 * se))
    # More scores, a narrower interval; it stays within [0, 1].
    assert auroc_interval(0.8, 1000, 1000)[1] - auroc_interval(0.8, 1000, 1000)[0] < (
        auroc_interval(0.8, 100, 100)[1] - auroc_interval(0.8, 100, 100)[0]
    )
    assert auroc_interval(1.0, 10, 10) == (1.0, 1.0)
    assert auroc_interval(0.99, 5, 5)[1] <= 1.0
    with pytest.raises(ValueError, match="at least one score"):
        auroc_interval(0.5, 0, 10)


def test_a_cell_gives_its_interval_or_the_spread_over_trials():
    record = {"defense": "none", "attack": "PGD-10", "n": 359, "accuracy": 12 / 359,
              "auroc": 0.8258470892906189}  # fmt: skip
    low, high = wilson_interval(12, 359)
    assert cell_text(record, "accuracy") == f"3.3 [{100 * low:.1f}, {100 * high:.1f}]"
    assert cell_text(record, "auroc") == "82.6 [79.5, 85.6]"  # the README's quickstart cell
    assert cell_text(record, "auroc", paired_detection=False) == "82.6"  # counts unknown
    assert cell_text({**record, "accuracy_std": 0.0123}, "accuracy") == "3.3 ± 1.2"
    assert cell_text({"ece": 0.091, "n": 359}, "ece") == "9.1"


def test_the_printed_tables_give_intervals_and_fit_80_columns():
    records = [
        {"defense": d, "attack": "clean", "n": 359, "accuracy": 0.986, "ece": 0.09}
        for d in ("none", "MI-PL", "MI-OL")
    ] + [
        {"defense": d, "attack": a, "n": 359, "accuracy": 0.4011, "auroc": 0.5699}
        for d in ("none", "MI-PL", "MI-OL")
        for a in ("PGD-10", "PGD-20 (eps 48/255)")
    ]
    console = Console(width=80, record=True)
    print_table(records, console)
    text = console.export_text()
    assert "40.1 [35.2, 45.3]" in text and "57.0 [52.8, 61.2]" in text
    assert "Hanley-McNeil" in text and "n = 359" in text
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text

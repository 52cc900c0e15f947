"""The audit on the console: a compact verdict per defense and the ladder, fitted to the width.

The full numbers (own accuracies, every interval, each attack's settings) are in audit.md
and results.json; the console shows what a reader decides on and points there.
"""

from pathlib import Path

from rich.console import Console
from rich.text import Text

from mixup_robust.evaluation.audit.summary import AuditSummary
from mixup_robust.evaluation.console_tables import Grid, print_grids, short_labels

VERDICT_COLUMNS = ["clean", "worst case", "95 % CI", "by", "vs. none"]
_VERDICT_WORDS = {"better": "better", "worse": "worse", "within noise": "n.s."}


def _versus(summary: AuditSummary) -> str:
    """'better p=0.008', 'n.s. p=0.5', or '-' for the bare classifier."""
    verdict, p_value = summary.versus_none
    if verdict == "baseline":
        return "-"
    return f"{_VERDICT_WORDS.get(verdict, verdict)} p={p_value:.2g}"


def _worst(summary: AuditSummary) -> str:
    worst = summary.worst
    text = f"{100 * worst.mean:.1f}"
    return text + (f" ± {100 * worst.std:.1f}" if len(worst.per_trial) > 1 else "")


def _interval(summary: AuditSummary) -> str:
    if not summary.worst.total:
        return "-"
    low, high = summary.worst.interval
    return f"{100 * low:.1f}-{100 * high:.1f}"


def verdict_grid(summaries: list[AuditSummary], rungs: dict[str, str]) -> Grid:
    """Per defense: clean and worst-case accuracy, the interval, the strongest rung, vs. none.

    Args:
        summaries: one per defense, 'none' first.
        rungs: each rung's name to its short label (`short_labels(names, "R")`).
    """
    cells = [
        [f"{100 * s.clean.mean:.1f}" if s.clean.total else "-", _worst(s), _interval(s),
         rungs[s.strongest], _versus(s)]
        for s in summaries
    ]  # fmt: skip
    return Grid(
        "Defense audit: accuracy (%) clean and in the worst case over the ladder",
        "defense", [s.defense for s in summaries], list(VERDICT_COLUMNS), cells,
        row_prefix="D", column_prefix="C",
        row_styles=["red" if s.flags else None for s in summaries],
        row_short=short_labels([s.defense for s in summaries], "D"),
    )  # fmt: skip


def ladder_grid(summaries: list[AuditSummary], rungs: dict[str, str]) -> Grid:
    """Accuracy (%) after each rung (rows) for each defense (columns), on all samples."""
    names = [spec.name for spec in summaries[0].rungs]
    defenses = [s.defense for s in summaries]
    cells = [
        [f"{100 * s.cumulative[k].mean:.1f}" for s in summaries] for k in range(1, len(names) + 1)
    ]
    return Grid(
        "Ladder: accuracy (%) after each rung, all samples", "rung",
        [rungs[name] for name in names], defenses, cells, row_prefix="R", column_prefix="D",
        column_short=short_labels(defenses, "D"),
    )  # fmt: skip


def print_audit(
    summaries: list[AuditSummary], console: Console | None = None, report: Path | None = None
) -> None:
    """The verdict per defense and the ladder, each fitted to the console, with one key.

    Args:
        summaries: one per defense, 'none' first.
        console: where to print (default: a new rich Console).
        report: the run's audit.md, named at the end as the place of the full report.
    """
    names = [spec.name for spec in summaries[0].rungs]
    rungs = short_labels(names, "R")
    first = summaries[0]
    trials = max(s.trials for s in summaries)
    notes: list[str | Text] = [
        f"n = {first.clean.total} test points ({first.own[0].total} on the full ladder), "
        f"{trials} trial(s) of the randomized defenses (± std over them). worst case: a sample "
        "counts only if no rung broke it; by: the strongest rung; vs. none: exact McNemar "
        "test, n.s. = no significant difference (p >= 0.05).",
    ]
    flagged = [(s.defense, flag) for s in summaries for flag in s.flags]
    notes += [
        Text.assemble(("red flag ", "bold red"), f"{defense}: {flag}") for defense, flag in flagged
    ]
    if not flagged:
        notes.append("No red flag fired.")
    where = str(report) if report is not None else "audit.md in the run directory"
    notes.append(f"Full report (own accuracies, intervals, every attack's settings): {where}")
    key = {rungs[name]: name for name in names if rungs[name] != name}
    print_grids(
        [verdict_grid(summaries, rungs), ladder_grid(summaries, rungs)], console, notes, key
    )

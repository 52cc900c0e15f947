"""The audit's report: audit.png and a paste-ready audit.md (the console: `verdict.py`)."""

import math
from dataclasses import asdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from mixup_robust.attacks import Attack
from mixup_robust.evaluation.audit.ladder import Ladder
from mixup_robust.evaluation.audit.summary import AuditSummary, Estimate
from mixup_robust.evaluation.figures import legend_below, percent_limits, run_title, save_figure
from mixup_robust.evaluation.names import CLEAN

KIND_TEXT = {
    "oblivious": "oblivious: crafted on the bare classifier (transfer)",
    "white-box": "adaptive white-box: crafted through the defense",
    "gradient-free": "adaptive, gradient-free: queries the defense",
}


def _versus(summary: AuditSummary) -> str:
    verdict, p_value = summary.versus_none
    return "-" if verdict == "baseline" else f"{verdict} (p = {p_value:.2g})"


def _summary_rows(summaries: list[AuditSummary]) -> list[list[str]]:
    return [
        [s.defense, s.clean.text(), s.worst.text(), s.strongest, _versus(s),
         "; ".join(str(f) for f in s.flags) or "none"]
        for s in summaries
    ]  # fmt: skip


SUMMARY_HEADER = ["defense", "clean", "worst case", "strongest attack", "vs. none", "red flags"]


def _ladder_cell(summary: AuditSummary, k: int, intervals: bool = True) -> str:
    """'cumulative (own [interval])' of rung k (1-based) in percent."""
    own = summary.own[k - 1]
    own_text = f" (own {own.text(intervals)})" if own.total else ""
    return f"{100 * summary.cumulative[k].mean:.1f}{own_text}"


def draw_audit(summaries: list[AuditSummary], path: Path, model: str | None = None) -> Path:
    """Writes the audit figure, one panel per defense, to `path` (PNG, atomically); returns it.

    Each panel shows each rung's own accuracy (bars), the accuracy after each rung (line) and
    the worst case (red line with its interval band); error bars are 95 % Wilson intervals.
    The title names the model's checkpoint (`model`) and n; the legend lies below the panels.
    """
    columns = min(3, len(summaries))
    rows = math.ceil(len(summaries) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 4.6 * rows),
                                squeeze=False, layout="constrained")  # fmt: skip
    for axis in axes.flat[len(summaries) :]:
        axis.axis("off")
    for axis, summary in zip(axes.flat, summaries, strict=False):
        names = [CLEAN] + [spec.name for spec in summary.rungs]
        xs = list(range(len(names)))
        own = [summary.clean, *summary.own]
        _bars(axis, xs, own)
        _line(axis, xs, summary.cumulative)
        low, high = summary.worst.interval
        axis.axhline(100 * summary.worst.mean, color="crimson", linestyle="--", label="worst case")
        axis.axhspan(100 * low, 100 * high, color="crimson", alpha=0.12)
        flags = f", {len(summary.flags)} red flag(s)" if summary.flags else ""
        axis.set_title(f"{summary.defense}: worst case {summary.worst.text(False)} %{flags}",
                       fontsize=9, color="crimson" if summary.flags else "black")  # fmt: skip
        axis.set_xticks(xs, names, rotation=60, ha="right", fontsize=7)
        axis.set(ylim=percent_limits([0.0, 100.0]), ylabel="accuracy (%)")
        axis.grid(alpha=0.3, axis="y")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    legend_below(figure, handles, labels)
    first = summaries[0]
    what = (f"Defense audit: accuracy (%) after each rung; {first.own[0].total} of the test points "
            f"on the full ladder; up to {max(s.trials for s in summaries)} trial(s)")  # fmt: skip
    figure.suptitle(run_title(what, model, first.clean.total), fontsize=10)
    return save_figure(figure, path)


def _bars(axis: Axes, xs: list[int], estimates: list[Estimate]) -> None:
    heights = [100 * e.mean if e.total else 0 for e in estimates]
    errors = [_error(e) for e in estimates]
    axis.bar(xs, heights, color="tab:blue", alpha=0.45, label="own (full-ladder samples)",
             yerr=list(zip(*errors, strict=True)), capsize=2)  # fmt: skip


def _line(axis: Axes, xs: list[int], estimates: list[Estimate]) -> None:
    ys = [100 * e.mean for e in estimates]
    errors = [_error(e) for e in estimates]
    shifted = [x + 0.15 for x in xs]  # beside the bars' error bars
    axis.errorbar(shifted, ys, yerr=list(zip(*errors, strict=True)), color="black", marker="o",
                  markersize=3, capsize=2, label="after this rung (all samples)")  # fmt: skip


def _error(estimate: Estimate) -> tuple[float, float]:
    """(below, above) the mean in percent, from the Wilson interval."""
    if not estimate.total:
        return 0.0, 0.0
    low, high = estimate.interval
    return max(0.0, 100 * (estimate.mean - low)), max(0.0, 100 * (high - estimate.mean))


def _setting(key: str, value: object) -> str:
    """A setting as written in the markdown; budgets also in 1/255 pixel steps."""
    if key in ("eps", "step_size") and isinstance(value, float) and 0 < value < 1:
        return f"{value:.4g} (= {value * 255:.3g}/255)"
    return str(value)


def _attack_line(number: int | None, attack: Attack, kind: str) -> str:
    settings = ", ".join(f"{k} = {_setting(k, v)}" for k, v in attack.describe().items())
    bullet = "-" if number is None else f"{number}."
    return (f"{bullet} **{attack.name}** ({KIND_TEXT.get(kind, kind)}; "
            f"`{type(attack).__name__}`): {settings or 'defaults'}")  # fmt: skip


def _markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + [
        "| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows
    ]


def audit_markdown(summaries: list[AuditSummary], ladder: Ladder, settings: dict) -> str:
    """A paste-ready appendix: results with intervals, the ladder, every attack's settings."""
    first = summaries[0]
    lines = [
        "## Defense audit", "",
        f"Model: `{settings['model']}`. Test samples: {first.clean.total}; every rung ran on "
        f"the {first.own[0].total} full-ladder samples (keyed fraction "
        f"{settings['full_ladder_fraction']}), elsewhere only on samples no earlier rung broke. "
        f"Randomized defenses: {settings['trials']} trials with independent seeds (mean ± std; "
        f"seed {settings['seed']} for trial 0). Intervals: 95 % Wilson. \"vs. none\": "
        "two-sided exact McNemar test on the per-sample worst case, paired with the bare "
        "classifier; a defense is ranked only where the test rejects equality (p < 0.05).", "",
    ]  # fmt: skip
    lines += [*_markdown_table(SUMMARY_HEADER, _summary_rows(summaries)), ""]
    lines += ["Accuracy (%) after each rung on all samples, and each rung's own accuracy "
              "[95 % CI] on the full-ladder samples:", ""]  # fmt: skip
    rows = [[spec.name, *[_ladder_cell(s, k) for s in summaries]]
            for k, spec in enumerate(first.rungs, start=1)]  # fmt: skip
    lines += [*_markdown_table(["rung", *[s.defense for s in summaries]], rows), ""]
    lines += ["### Attacks", ""]
    lines += [_attack_line(k, a, s.kind) for k, (a, s) in
              enumerate(zip(ladder.rungs, first.rungs, strict=True), start=1)]  # fmt: skip
    if ladder.unbounded is not None:
        lines += ["", "Sanity probe (not part of the worst case), on the full-ladder samples:", ""]
        lines += [_attack_line(None, ladder.unbounded, "unbounded budget")]
    thresholds = ", ".join(f"{k} = {v}" for k, v in asdict(settings["thresholds"]).items())
    lines += ["", f"Red-flag thresholds: {thresholds} (see docs/audit.md).", ""]
    return "\n".join(lines)

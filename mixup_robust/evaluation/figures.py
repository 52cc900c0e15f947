"""What every figure of a measurement shares: PNG files, each written atomically, and a layout.

A reader can trust a figure at a glance: its title names the model and n, legends sit outside
the axes, and percent axes keep 0 % and 100 % whole.
"""

import math
from collections.abc import Sequence
from pathlib import Path, PurePath

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or wanted
import matplotlib.pyplot as plt
from matplotlib.artist import Artist
from matplotlib.figure import Figure

from mixup_robust.atomic import atomic_file

# Room around a percent axis's round limits, as a share of its span: a marker at 0 % or
# 100 % is drawn whole, not cut in half by the axis.
PERCENT_MARGIN = 0.05


def save_figure(figure: Figure, path: Path) -> Path:
    """Saves a PNG atomically (temporary file, then rename), closes the figure; returns `path`."""
    try:
        with atomic_file(path) as file:
            figure.savefig(file, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(figure)
    return path


def checkpoint_label(checkpoint: str) -> str:
    """A checkpoint's short name for a title: its run folder, version and file.

    `runs/quickstart/mixup/lightning_logs/version_0/checkpoints/last.ckpt` becomes
    `mixup/version_0/last.ckpt`; an `ExternalClassifier` (`pkg.resnet18 @ models/r18.pt`)
    becomes `resnet18 @ models/r18.pt`.
    """
    if " @ " in checkpoint:
        architecture, weights = checkpoint.split(" @ ", 1)
        return f"{architecture.rsplit('.', 1)[-1]} @ {checkpoint_label(weights)}"
    parts = [p for p in PurePath(checkpoint).parts if p not in ("lightning_logs", "checkpoints")]
    return "/".join(parts[-3:])


def run_title(what: str, checkpoint: str | None, n: int | None) -> str:
    """'<what>' over '<model's checkpoint>, n=<test points> test points'."""
    model = checkpoint_label(checkpoint) if checkpoint else "model not recorded"
    points = f"n={n} test points" if n is not None else "n=? (not recorded)"
    return f"{what}\n{model}, {points}"


def records_title(what: str, records: Sequence[dict]) -> str:
    """`run_title` from result records: their checkpoint and clean test points.

    n is the clean records' largest `n` (every test point is scored clean).
    """
    checkpoints = list(dict.fromkeys(str(r["checkpoint"]) for r in records if "checkpoint" in r))
    clean = [r["n"] for r in records if r.get("attack") == "clean" and "n" in r]
    counts = clean or [r["n"] for r in records if "n" in r]
    return run_title(
        what, checkpoints[0] if len(checkpoints) == 1 else None, max(counts, default=None)
    )


def percent_limits(values: Sequence[float]) -> tuple[float, float]:
    """Axis limits in accuracy percent: round limits around the data, then a margin.

    The round limits are multiples of 10, at least 20 apart, and `PERCENT_MARGIN` of room
    lies beyond them on each side.
    An axis zoomed to the data (12.0 to 13.0 when every point is 12.5) would make equal
    accuracies look different; this one starts from a round floor within [0, 100], and its
    margin keeps a point on the floor or ceiling (0 %, 100 %) whole.
    """
    low = max(0.0, 10 * math.floor((min(values) - 5) / 10))
    high = min(100.0, 10 * math.ceil((max(values) + 5) / 10))
    if high - low < 20:
        low, high = (max(0.0, high - 20), high) if high >= 20 else (0.0, 20.0)
    margin = PERCENT_MARGIN * (high - low)
    return low - margin, high + margin


def legend_below(figure: Figure, handles: Sequence[Artist], labels: Sequence[str]) -> None:
    """One legend for the whole figure, below every panel (the figure uses constrained layout).

    Outside every axes, so it covers no point and runs into no other panel.
    """
    if not handles:
        return
    # About 0.06 inch per character at 8 points, and 0.6 inch for the marker and gaps.
    entry = 0.6 + 0.06 * max(len(label) for label in labels)
    columns = max(1, min(len(labels), int(figure.get_figwidth() / entry)))
    figure.legend(handles, labels, loc="outside lower center", ncol=columns, fontsize=8,
                  frameon=False)  # fmt: skip

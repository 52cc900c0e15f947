"""Figures drawn from results.json, so they can be redrawn without re-running anything.

python -m mixup_robust.evaluation.redraw runs/.../results.json (`redraw.py` runs this module's
`main` without the RuntimeWarning that running this module itself gives).
"""

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or wanted
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from rich.console import Console

from mixup_robust.evaluation.figures import save_figure
from mixup_robust.evaluation.names import CLEAN

REQUIRED_FIELDS = ("defense", "attack", "accuracy")
MARKERS = ("s", "D", "^", "v", "P", "X", "o")


def percent_limits(values: list[float]) -> tuple[float, float]:
    """Axis limits in accuracy percent: multiples of 10 around the data, at least 20 wide.

    An axis zoomed to the data (12.0 to 13.0 when every point is 12.5) would make equal
    accuracies look different; this one starts from a round floor and stays in [0, 100].
    """
    low = max(0.0, 10 * math.floor((min(values) - 5) / 10))
    high = min(100.0, 10 * math.ceil((max(values) + 5) / 10))
    if high - low < 20:
        low, high = (max(0.0, high - 20), high) if high >= 20 else (0.0, 20.0)
    return low, high


def _finish(axis: Axes, xlabel: str, ylabel: str, title: str, legend: bool = True) -> None:
    """Labels, grid, and a legend beside the axes, where it covers no point."""
    axis.set(xlabel=xlabel, ylabel=ylabel, title=title)
    axis.grid(alpha=0.3)
    if legend and axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)


def _accuracy_by_cell(records: list[dict]) -> dict[tuple[str, str], float]:
    return {(r["defense"], r["attack"]): r["accuracy"] for r in records}


def plot_tradeoff(records: list[dict], path: Path) -> Path | None:
    """Clean against robust accuracy, one panel per attack (the MI paper's Figure 3b).

    Swept defenses are drawn as lines through their values; other defenses as points.
    """
    attacks = list(dict.fromkeys(r["attack"] for r in records if r["attack"] != CLEAN))
    if not attacks:
        return None
    accuracy = _accuracy_by_cell(records)
    sweeps = defaultdict(list)
    for record in records:
        if record["attack"] == CLEAN and "sweep" in record:
            sweeps[record["sweep"]].append(record)
    figure, axes = plt.subplots(1, len(attacks), figsize=(6.5 * len(attacks), 4.5), squeeze=False)
    for axis, attack in zip(axes[0], attacks, strict=True):
        points: list[tuple[float, float]] = []
        for name, members in sweeps.items():
            members = sorted(members, key=lambda r: r["value"])
            xs = [100 * accuracy[(m["defense"], CLEAN)] for m in members]
            ys = [100 * accuracy[(m["defense"], attack)] for m in members]
            axis.plot(xs, ys, marker="o", label=f"{name} ({members[0]['parameter']})")
            for number, (x, y, member) in enumerate(zip(xs, ys, members, strict=True)):
                # Alternate the label above and below its point so neighbours do not overprint.
                offset = (4, 5) if number % 2 == 0 else (4, -11)
                axis.annotate(
                    f"{member['value']:g}", (x, y), xytext=offset, textcoords="offset points",
                    fontsize=8, alpha=0.9,
                )  # fmt: skip
            points += list(zip(xs, ys, strict=True))
        singles = [r for r in records if r["attack"] == CLEAN and "sweep" not in r]
        for number, record in enumerate(singles):
            defense = record["defense"]
            point = (100 * record["accuracy"], 100 * accuracy[(defense, attack)])
            # Hollow markers of growing size: defenses at the same point stay visible.
            axis.scatter(
                *point, marker=MARKERS[number % len(MARKERS)], s=40 + 25 * number,
                facecolors="none", edgecolors=f"C{number + len(sweeps)}", linewidths=1.5,
                label=defense,
            )  # fmt: skip
            points.append(point)
        axis.set_xlim(*percent_limits([x for x, _ in points] or [0.0, 100.0]))
        axis.set_ylim(*percent_limits([y for _, y in points] or [0.0, 100.0]))
        _finish(axis, "clean accuracy (%)", f"accuracy under {attack} (%)", attack)
    return save_figure(figure, path)


def plot_parameter(records: list[dict], path: Path) -> Path | None:
    """Accuracy against each swept parameter's value, one line per attack (clean included)."""
    swept = [r for r in records if "sweep" in r]
    if not swept:
        return None
    names = list(dict.fromkeys(r["sweep"] for r in swept))
    figure, axes = plt.subplots(1, len(names), figsize=(6.5 * len(names), 4), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        members = [r for r in swept if r["sweep"] == name]
        for attack in dict.fromkeys(r["attack"] for r in members):
            points = sorted(
                (r["value"], 100 * r["accuracy"]) for r in members if r["attack"] == attack
            )
            axis.plot(*zip(*points, strict=True), marker="o", label=attack)
        axis.set_ylim(*percent_limits([100 * r["accuracy"] for r in members]))
        _finish(axis, members[0]["parameter"], "accuracy (%)", name)
    return save_figure(figure, path)


def plot_adaptive_samples(records: list[dict], path: Path) -> Path | None:
    """Accuracy against the number of adaptive samples N_A, one panel per number of steps.

    The MI paper's Figure 4: solid lines for each defense under adaptive attacks, dashed
    lines for the bare classifier under the oblivious attack with the same steps.
    """
    adaptive = [r for r in records if r.get("threat_model") == "adaptive" and "n_samples" in r]
    if not adaptive:
        return None
    steps = sorted({r["steps"] for r in adaptive})
    figure, axes = plt.subplots(1, len(steps), figsize=(6 * len(steps), 4), squeeze=False)
    for axis, count in zip(axes[0], steps, strict=True):
        members = [r for r in adaptive if r["steps"] == count and r["defense"] != "none"]
        for defense in dict.fromkeys(r["defense"] for r in members):
            points = sorted(
                (r["n_samples"], 100 * r["accuracy"]) for r in members if r["defense"] == defense
            )
            axis.plot(*zip(*points, strict=True), marker="o", label=defense)
        for record in records:
            if (
                record["defense"] == "none"
                and record.get("threat_model") == "oblivious"
                and record.get("steps") == count
            ):
                axis.axhline(100 * record["accuracy"], linestyle="--", color="grey")
        axis.set_ylim(*percent_limits([100 * r["accuracy"] for r in members] or [0.0]))
        _finish(axis, "adaptive samples N_A", "accuracy (%)", f"adaptive PGD-{count}")
    return save_figure(figure, path)


def read_records(results: Path) -> list[dict]:
    """The records of a results.json, or a clear error saying what is wrong with the file."""
    if not results.is_file():
        raise FileNotFoundError(f"No results file at {results}; give an evaluation's results.json.")
    try:
        records = json.loads(results.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{results} is not valid JSON ({error}).") from None
    if not isinstance(records, list) or not records:
        raise ValueError(
            f"{results} holds no result records (expected a non-empty list, as an evaluation "
            "writes); there is nothing to draw."
        )
    for number, record in enumerate(records):
        wrong = not isinstance(record, dict) or not all(k in record for k in REQUIRED_FIELDS)
        if wrong or not isinstance(record["accuracy"], (int, float)):
            raise ValueError(
                f"Record {number} of {results} is not an evaluation result (each needs "
                f"{', '.join(REQUIRED_FIELDS)}, accuracy a number): {str(record)[:200]}"
            )
    return records


def draw_all(results: Path, directory: Path | None = None) -> list[Path]:
    """Draws every figure that the records of `results` support, beside it by default."""
    records = read_records(Path(results))
    directory = Path(directory or Path(results).parent)
    drawn = [
        plot_tradeoff(records, directory / "tradeoff.png"),
        plot_parameter(records, directory / "accuracy_vs_parameter.png"),
        plot_adaptive_samples(records, directory / "accuracy_vs_adaptive_samples.png"),
    ]
    return [path for path in drawn if path is not None]


def main(args: list[str] | None = None) -> None:
    """Redraws the figures of a results.json; exits non-zero with the reason if it cannot."""
    parser = argparse.ArgumentParser(description="Redraw an evaluation's figures.")
    parser.add_argument("results", type=Path, help="results.json of an evaluation")
    parser.add_argument("--out", type=Path, default=None, help="folder (default: beside it)")
    arguments = parser.parse_args(args)
    try:
        drawn = draw_all(arguments.results, arguments.out)
    except (OSError, ValueError) as error:
        parser.exit(1, f"error: {error}\n")
    if not drawn:
        parser.exit(
            1,
            f"error: {arguments.results} supports no figure: the trade-off needs an attack "
            "besides clean, the parameter plot a sweep, and the N_A plot adaptive attacks "
            "with n_samples.\n",
        )
    console = Console()
    for path in drawn:
        console.print(f"wrote {path}")


if __name__ == "__main__":
    main()

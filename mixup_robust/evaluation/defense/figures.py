"""Figures drawn from results.json, so they can be redrawn without re-running anything.

python -m mixup_robust.evaluation.redraw runs/.../results.json (`redraw.py` runs this module's
`main` without the RuntimeWarning that running this module itself gives).
"""

import argparse
import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or wanted
import matplotlib.pyplot as plt
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from rich.console import Console

from mixup_robust.evaluation.figures import (
    legend_below,
    percent_limits,
    records_title,
    save_figure,
)
from mixup_robust.evaluation.names import CLEAN

REQUIRED_FIELDS = ("defense", "attack", "accuracy")
MARKERS = ("s", "D", "^", "v", "P", "X", "o")
# Marker area (points^2) of a defense's point; each further defense on the same spot is drawn
# larger, hollow, around it, so that every one stays visible.
MARKER_AREA = 60.0
GROWTH = 90.0
# Points equal to the tables' precision (0.1 %) lie on one spot: they are drawn concentric, with
# one label naming them all ("none = MI-PL"). Points that only lie close keep their own
# markers (hollow, of different shapes, so both show).
SPOT_DECIMALS = 1


def _accuracy_by_cell(records: list[dict]) -> dict[tuple[str, str], float]:
    return {(r["defense"], r["attack"]): r["accuracy"] for r in records}


def _spots(points: list[tuple[str, float, float]]) -> list[list[tuple[str, float, float]]]:
    """Groups of (defense, x, y) on one spot (equal to 0.1 %), in the order the defenses come."""
    groups: dict[tuple[float, float], list[tuple[str, float, float]]] = defaultdict(list)
    for point in points:
        groups[(round(point[1], SPOT_DECIMALS), round(point[2], SPOT_DECIMALS))].append(point)
    return list(groups.values())


def _draw_spot(axis: Axes, group: list, styles: dict[str, tuple[str, str]], mid: float) -> None:
    """The defenses of one spot: concentric hollow markers, and a label naming them all."""
    for rank, (defense, x, y) in enumerate(group):
        marker, color = styles[defense]
        axis.scatter(x, y, marker=marker, s=MARKER_AREA + GROWTH * rank, facecolors="none",
                     edgecolors=color, linewidths=1.5, zorder=3 + rank)  # fmt: skip
    if len(group) > 1:
        _, x, y = group[0]
        left = x > mid  # the label on the side with more room
        names = " = ".join(defense for defense, _, _ in group)
        axis.annotate(
            names, (x, y), xytext=(-9 if left else 9, 0),
            textcoords="offset points", ha="right" if left else "left", va="center", fontsize=7,
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.8, "lw": 0},
        )  # fmt: skip


def _single_styles(singles: list[dict], offset: int) -> dict[str, tuple[str, str]]:
    """Each unswept defense's marker and colour, the same in every panel."""
    return {
        r["defense"]: (MARKERS[k % len(MARKERS)], f"C{(k + offset) % 10}")
        for k, r in enumerate(singles)
    }


def plot_tradeoff(records: list[dict], path: Path) -> Path | None:
    """Clean against robust accuracy, one panel per attack (the MI paper's Figure 3b).

    Swept defenses are drawn as lines through their values; other defenses as hollow points,
    each with its marker and colour in every panel. Defenses on one spot (equal to 0.1 %) are
    drawn concentric and labelled together ("none = MI-PL"). One legend below the panels;
    the title names the model's checkpoint and n.
    """
    attacks = list(dict.fromkeys(r["attack"] for r in records if r["attack"] != CLEAN))
    if not attacks:
        return None
    accuracy = _accuracy_by_cell(records)
    sweeps = defaultdict(list)
    for record in records:
        if record["attack"] == CLEAN and "sweep" in record:
            sweeps[record["sweep"]].append(record)
    singles = [r for r in records if r["attack"] == CLEAN and "sweep" not in r]
    styles = _single_styles(singles, len(sweeps))
    figure, axes = plt.subplots(1, len(attacks), figsize=(5.2 * len(attacks), 4.6),
                                squeeze=False, layout="constrained")  # fmt: skip
    handles: dict[str, Artist] = {}
    for axis, attack in zip(axes[0], attacks, strict=True):
        xs_all: list[float] = []
        ys_all: list[float] = []
        for name, members in sweeps.items():
            members = sorted(members, key=lambda r: r["value"])
            xs = [100 * accuracy[(m["defense"], CLEAN)] for m in members]
            ys = [100 * accuracy[(m["defense"], attack)] for m in members]
            label = f"{name} ({members[0]['parameter']})"
            color = f"C{list(sweeps).index(name) % 10}"
            (handles[label],) = axis.plot(xs, ys, marker="o", markersize=4, color=color)
            for x, y, member in zip(xs, ys, members, strict=True):
                # Beside each point, right of it: a steep line's labels stack, none overprints.
                axis.annotate(f"{member['value']:g}", (x, y), xytext=(5, 0), va="center",
                              textcoords="offset points", fontsize=7, alpha=0.9)  # fmt: skip
            xs_all += xs
            ys_all += ys
        points = [
            (r["defense"], 100 * r["accuracy"], 100 * accuracy[(r["defense"], attack)])
            for r in singles if (r["defense"], attack) in accuracy
        ]  # fmt: skip
        xlim = percent_limits(xs_all + [x for _, x, _ in points] or [0.0, 100.0])
        ylim = percent_limits(ys_all + [y for _, _, y in points] or [0.0, 100.0])
        for group in _spots(points):
            _draw_spot(axis, group, styles, (xlim[0] + xlim[1]) / 2)
        axis.set(xlim=xlim, ylim=ylim, xlabel="clean accuracy (%)",
                 ylabel=f"accuracy under {attack} (%)", title=attack)  # fmt: skip
        axis.grid(alpha=0.3)
    singles_first: dict[str, Artist] = {}
    for defense, (marker, color) in styles.items():
        singles_first[defense] = Line2D([], [], marker=marker, linestyle="none", markersize=7,
                                  markerfacecolor="none", markeredgecolor=color,
                                  markeredgewidth=1.5)  # fmt: skip
    handles = singles_first | handles
    legend_below(figure, list(handles.values()), list(handles))
    figure.suptitle(records_title("Clean against robust accuracy", records), fontsize=10)
    return save_figure(figure, path)


def plot_parameter(records: list[dict], path: Path) -> Path | None:
    """Accuracy against each swept parameter's value, one line per attack (clean included)."""
    swept = [r for r in records if "sweep" in r]
    if not swept:
        return None
    names = list(dict.fromkeys(r["sweep"] for r in swept))
    figure, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4.2), squeeze=False,
                                layout="constrained")  # fmt: skip
    handles: dict[str, Artist] = {}
    attacks = list(dict.fromkeys(r["attack"] for r in swept))
    for axis, name in zip(axes[0], names, strict=True):
        members = [r for r in swept if r["sweep"] == name]
        for number, attack in enumerate(attacks):
            points = sorted(
                (r["value"], 100 * r["accuracy"]) for r in members if r["attack"] == attack
            )
            if points:
                (handles[attack],) = axis.plot(*zip(*points, strict=True), marker="o",
                                               color=f"C{number % 10}")  # fmt: skip
        axis.set_ylim(*percent_limits([100 * r["accuracy"] for r in members]))
        axis.set(xlabel=members[0]["parameter"], ylabel="accuracy (%)", title=name)
        axis.margins(x=0.06)
        axis.grid(alpha=0.3)
    legend_below(figure, list(handles.values()), list(handles))
    figure.suptitle(records_title("Accuracy against the swept parameter", records), fontsize=10)
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
    figure, axes = plt.subplots(1, len(steps), figsize=(5.5 * len(steps), 4.2), squeeze=False,
                                layout="constrained")  # fmt: skip
    handles: dict[str, Artist] = {}
    defenses = list(dict.fromkeys(r["defense"] for r in adaptive if r["defense"] != "none"))
    for axis, count in zip(axes[0], steps, strict=True):
        members = [r for r in adaptive if r["steps"] == count and r["defense"] != "none"]
        values = [100 * r["accuracy"] for r in members]
        for number, defense in enumerate(defenses):
            points = sorted(
                (r["n_samples"], 100 * r["accuracy"]) for r in members if r["defense"] == defense
            )
            if points:
                (handles[defense],) = axis.plot(*zip(*points, strict=True), marker="o",
                                                color=f"C{number % 10}")  # fmt: skip
        for record in records:
            if (
                record["defense"] == "none"
                and record.get("threat_model") == "oblivious"
                and record.get("steps") == count
            ):
                label = "none, oblivious attack"
                handles[label] = axis.axhline(
                    100 * record["accuracy"], linestyle="--", color="grey"
                )
                values.append(100 * record["accuracy"])
        axis.set_ylim(*percent_limits(values or [0.0]))
        axis.set(
            xlabel="adaptive samples N_A", ylabel="accuracy (%)", title=f"adaptive PGD-{count}"
        )
        axis.margins(x=0.06)
        axis.grid(alpha=0.3)
    legend_below(figure, list(handles.values()), list(handles))
    figure.suptitle(records_title("Accuracy against adaptive samples", records), fontsize=10)
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

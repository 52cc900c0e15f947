"""Figures drawn from results.json, so they can be redrawn without re-running anything.

python -m mixup_robust.evaluation.plots runs/.../results.json
"""

import argparse
import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or wanted
import matplotlib.pyplot as plt  # noqa: E402
from rich.console import Console  # noqa: E402

CLEAN = "clean"


def _save(figure, path: Path) -> Path:
    """Saves a PNG atomically (temporary file, then rename) and closes the figure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".png")
    os.close(handle)
    try:
        figure.savefig(temporary, dpi=120, bbox_inches="tight")
        os.replace(temporary, path)
    finally:
        plt.close(figure)
        Path(temporary).unlink(missing_ok=True)
    return path


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
    figure, axes = plt.subplots(1, len(attacks), figsize=(5 * len(attacks), 4.2), squeeze=False)
    for axis, attack in zip(axes[0], attacks, strict=True):
        for name, members in sweeps.items():
            members = sorted(members, key=lambda r: r["value"])
            xs = [100 * accuracy[(m["defense"], CLEAN)] for m in members]
            ys = [100 * accuracy[(m["defense"], attack)] for m in members]
            axis.plot(xs, ys, marker="o", label=f"{name} ({members[0]['parameter']})")
            for x, y, member in zip(xs, ys, members, strict=True):
                axis.annotate(f"{member['value']:g}", (x, y), fontsize=7, alpha=0.8)
        for record in records:
            if record["attack"] == CLEAN and "sweep" not in record:
                defense = record["defense"]
                point = (100 * record["accuracy"], 100 * accuracy[(defense, attack)])
                axis.scatter(*point, marker="s", label=defense)
        axis.set(xlabel="clean accuracy (%)", ylabel=f"accuracy under {attack} (%)", title=attack)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    return _save(figure, path)


def plot_parameter(records: list[dict], path: Path) -> Path | None:
    """Accuracy against each swept parameter's value, one line per attack (clean included)."""
    swept = [r for r in records if "sweep" in r]
    if not swept:
        return None
    names = list(dict.fromkeys(r["sweep"] for r in swept))
    figure, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for axis, name in zip(axes[0], names, strict=True):
        members = [r for r in swept if r["sweep"] == name]
        for attack in dict.fromkeys(r["attack"] for r in members):
            points = sorted(
                (r["value"], 100 * r["accuracy"]) for r in members if r["attack"] == attack
            )
            axis.plot(*zip(*points, strict=True), marker="o", label=attack)
        axis.set(xlabel=members[0]["parameter"], ylabel="accuracy (%)", title=name)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    return _save(figure, path)


def plot_adaptive_samples(records: list[dict], path: Path) -> Path | None:
    """Accuracy against the number of adaptive samples N_A, one panel per number of steps.

    The MI paper's Figure 4: solid lines for each defense under adaptive attacks, dashed
    lines for the bare classifier under the oblivious attack with the same steps.
    """
    adaptive = [r for r in records if r.get("threat_model") == "adaptive" and "n_samples" in r]
    if not adaptive:
        return None
    steps = sorted({r["steps"] for r in adaptive})
    figure, axes = plt.subplots(1, len(steps), figsize=(4.5 * len(steps), 4), squeeze=False)
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
        axis.set(
            xlabel="adaptive samples N_A", ylabel="accuracy (%)", title=f"adaptive PGD-{count}"
        )
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    return _save(figure, path)


def draw_all(results: Path, directory: Path | None = None) -> list[Path]:
    """Draws every figure that the records of `results` support, beside it by default."""
    records = json.loads(Path(results).read_text())
    directory = Path(directory or Path(results).parent)
    drawn = [
        plot_tradeoff(records, directory / "tradeoff.png"),
        plot_parameter(records, directory / "accuracy_vs_parameter.png"),
        plot_adaptive_samples(records, directory / "accuracy_vs_adaptive_samples.png"),
    ]
    return [path for path in drawn if path is not None]


def main() -> None:
    parser = argparse.ArgumentParser(description="Redraw an evaluation's figures.")
    parser.add_argument("results", type=Path, help="results.json of an evaluation")
    parser.add_argument("--out", type=Path, default=None, help="folder (default: beside it)")
    arguments = parser.parse_args()
    console = Console()
    for path in draw_all(arguments.results, arguments.out):
        console.print(f"wrote {path}")


if __name__ == "__main__":
    main()

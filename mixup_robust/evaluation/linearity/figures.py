"""Local linearity error against eps, drawn from one or more results.json files.

python -m mixup_robust.evaluation.linearity.plot mixup/results.json varmixup/results.json \
    --labels Mixup VarMixup --out local_linearity.png
(`linearity/plot.py` runs this module's `main` without the RuntimeWarning that running this
module itself gives.)
"""

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or wanted
import matplotlib.pyplot as plt
from rich.console import Console

from mixup_robust.evaluation.figures import checkpoint_label, legend_below, save_figure
from mixup_robust.evaluation.names import LOCAL_LINEARITY


def plot_local_linearity(
    results: Sequence[Path], path: Path, labels: Sequence[str] | None = None
) -> Path | None:
    """One line per results file (e.g. Mixup vs. VarMixup, the paper's Fig. 4).

    The title names each line's checkpoint and n (test points); the legend lies below the axes.

    Args:
        results: results.json files of LocalLinearityEvaluation runs.
        path: the PNG to write (atomically).
        labels: legend entries; default: each file's checkpoint (its run folder, version and
            file), else the file's parent folder name.

    Returns:
        `path`, or None when no file holds local-linearity records.
    """
    if labels is not None and len(labels) != len(results):
        raise ValueError(f"{len(labels)} labels for {len(results)} results files.")
    figure, axis = plt.subplots(figsize=(5.5, 4.2), layout="constrained")
    handles, names, titles = [], [], []
    for number, file in enumerate(results):
        records = [
            r for r in json.loads(Path(file).read_text()) if r.get("measure") == LOCAL_LINEARITY
        ]
        if not records:
            continue
        points = sorted((255 * r["eps"], r["value"]) for r in records)
        handles += axis.plot(*zip(*points, strict=True), marker="o")
        n = max((r["n"] for r in records if "n" in r), default=None)
        checkpoint = records[0].get("checkpoint")
        model = checkpoint_label(str(checkpoint)) if checkpoint else None
        # Default label: the model's checkpoint (a run's own folder may be a staging folder).
        label = labels[number] if labels is not None else model or Path(file).parent.name
        names.append(label)
        about = f"n={n if n is not None else '?'}"
        known = model or "model not recorded"
        titles.append(f"{known}, {about}" if label == model else f"{label}: {known}, {about}")
    if not handles:
        plt.close(figure)
        return None
    axis.set(xlabel="eps (x 1/255, L-inf)", ylabel="local linearity error", yscale="linear")
    axis.margins(0.06)
    axis.grid(alpha=0.3)
    legend_below(figure, handles, names)
    figure.suptitle("\n".join(["Local linearity error", *titles]), fontsize=9)
    return save_figure(figure, Path(path))


def main() -> None:
    """Command line: draws the figure from the results files given (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Plot local linearity error against eps.")
    parser.add_argument("results", type=Path, nargs="+", help="results.json files")
    parser.add_argument("--labels", nargs="+", default=None, help="one legend entry per file")
    parser.add_argument("--out", type=Path, default=Path("local_linearity.png"))
    arguments = parser.parse_args()
    try:
        drawn = plot_local_linearity(arguments.results, arguments.out, arguments.labels)
    except (OSError, ValueError) as error:
        parser.exit(1, f"error: {error}\n")
    if drawn is None:
        parser.exit(1, "error: none of the files holds local-linearity records.\n")
    Console().print(f"wrote {drawn}")


if __name__ == "__main__":
    main()

"""What every figure of a measurement shares: PNG files only, each written atomically."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or wanted
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from mixup_robust.atomic import atomic_file


def save_figure(figure: Figure, path: Path) -> Path:
    """Saves a PNG atomically (temporary file, then rename), closes the figure; returns `path`."""
    try:
        with atomic_file(path) as file:
            figure.savefig(file, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(figure)
    return path

"""Figures a reader can trust at a glance, checked on the artists' bounding boxes: legends
clear of every axes, every marker whole inside its axes (0 % included), points on one spot
all visible and named together, and a title with the model's checkpoint and n."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.text import Annotation

from mixup_robust.evaluation import figures as base
from mixup_robust.evaluation.audit import report
from mixup_robust.evaluation.defense import figures as plots
from mixup_robust.evaluation.linearity import figures as linearity
from tests.helpers.reports import (
    CHECKPOINT,
    DIGITS_RUNGS,
    audit_summaries,
    evaluation_records,
)


@pytest.fixture
def drawn(monkeypatch):
    """The figures the modules would save, drawn on their canvas instead of written."""
    figures: list[Figure] = []

    def keep(figure, path):
        figure.canvas.draw()
        figures.append(figure)
        return path

    for module in (plots, report, linearity):
        monkeypatch.setattr(module, "save_figure", keep)
    return figures


def _visible_axes(figure: Figure) -> list:
    return [axis for axis in figure.axes if axis.axison]


def _check_legends_clear(figure: Figure) -> None:
    renderer = figure.canvas.get_renderer()
    legends = [*figure.legends, *[a.get_legend() for a in figure.axes if a.get_legend()]]
    assert legends, "no legend"
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for axis in _visible_axes(figure):
            assert not box.overlaps(axis.get_tightbbox(renderer)), (legend, axis.get_title())


def _marker_boxes(axis, dpi: float) -> list[tuple[float, float, float]]:
    """(x, y, radius) in display pixels of every marker drawn in `axis`."""
    markers = []
    for collection in axis.collections:
        if isinstance(collection, PathCollection) and len(collection.get_offsets()):
            points = collection.get_offset_transform().transform(collection.get_offsets())
            sizes = collection.get_sizes()
            for (x, y), size in zip(points, [*sizes] * len(points), strict=False):
                markers.append((x, y, math.sqrt(size) / 2 * dpi / 72))
    for line in axis.lines:
        if line.get_marker() in ("None", None, "", " ") or not line.get_visible():
            continue
        for x, y in axis.transData.transform(line.get_xydata()):
            markers.append((x, y, line.get_markersize() / 2 * dpi / 72))
    return markers


def _check_markers_inside(figure: Figure) -> int:
    count = 0
    for axis in _visible_axes(figure):
        window = axis.get_window_extent()
        for x, y, radius in _marker_boxes(axis, figure.dpi):
            assert window.x0 <= x - radius and x + radius <= window.x1, (axis.get_title(), x)
            assert window.y0 <= y - radius and y + radius <= window.y1, (axis.get_title(), y)
            count += 1
    return count


def _check_title(figure: Figure, n: int) -> str:
    title = figure.get_suptitle()
    assert f"n={n}" in title and "mixup/version_0/last.ckpt" in title, title
    return title


def test_tradeoff_points_legend_and_title(drawn, tmp_path):
    records = evaluation_records()
    plots.plot_tradeoff(records, tmp_path / "tradeoff.png")
    (figure,) = drawn
    _check_title(figure, 359)
    _check_legends_clear(figure)
    panels = _visible_axes(figure)
    assert len(panels) == 3
    # 8 defenses as points and 5 swept values (line markers) in each panel, all whole
    assert _check_markers_inside(figure) == 3 * (8 + 5)
    renderer = figure.canvas.get_renderer()
    for axis in panels:
        assert axis.get_ylim()[0] < 0 < axis.get_ylim()[1]  # 0 % lies inside, not on the edge
        # none and MI-PL lie on one spot: both drawn (two sizes) and named together
        spot = [c for c in axis.collections if isinstance(c, PathCollection)][:2]
        assert (spot[0].get_offsets() == spot[1].get_offsets()).all()
        assert spot[0].get_sizes()[0] < spot[1].get_sizes()[0]
        shared = [t for t in axis.texts if isinstance(t, Annotation) and "MI-PL" in t.get_text()]
        assert len(shared) == 1 and shared[0].get_text().startswith("none = MI-PL")
        inside = axis.get_window_extent()
        box = shared[0].get_window_extent(renderer)
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1
    legend = figure.legends[0]
    entries = [text.get_text() for text in legend.get_texts()]
    assert entries[:2] == ["none", "MI-PL"] and "MI-OL (mixup_ratio)" in entries


def test_parameter_and_adaptive_figures_legend_below_and_title(drawn, tmp_path):
    records = evaluation_records()
    for n_samples, accuracy in ((1, 0.3), (10, 0.0)):
        records.append({"defense": "MI-OL", "attack": f"EOT-PGD-10 (N_A={n_samples})",
                        "threat_model": "adaptive", "steps": 10, "n_samples": n_samples,
                        "n": 359, "accuracy": accuracy, "checkpoint": CHECKPOINT})  # fmt: skip
    records.append({"defense": "none", "attack": "PGD-10 oblivious", "threat_model": "oblivious",
                    "steps": 10, "n": 359, "accuracy": 0.0, "checkpoint": CHECKPOINT})  # fmt: skip
    plots.plot_parameter(records, tmp_path / "parameter.png")
    plots.plot_adaptive_samples(records, tmp_path / "adaptive.png")
    assert len(drawn) == 2
    for figure in drawn:
        _check_title(figure, 359)
        _check_legends_clear(figure)
        assert _check_markers_inside(figure) > 0
    adaptive = _visible_axes(drawn[1])[0]
    assert adaptive.get_ylim()[0] < 0 < adaptive.get_ylim()[1]  # its 0 % points are whole


def test_audit_figure_legend_title_and_markers(drawn, tmp_path):
    summaries = audit_summaries(DIGITS_RUNGS)
    report.draw_audit(summaries, tmp_path / "audit.png", model=CHECKPOINT)
    (figure,) = drawn
    title = _check_title(figure, 150)
    assert "15 of the test points on the full ladder" in title
    _check_legends_clear(figure)
    # per panel: the line's 10 markers and the error bars' caps, all whole (none at 0 %)
    assert _check_markers_inside(figure) >= len(summaries) * (len(DIGITS_RUNGS) + 1)
    titles = [axis.get_title() for axis in _visible_axes(figure)]
    assert titles[0].startswith("none: worst case") and len(titles) == len(summaries)


def test_linearity_figure_legend_below_and_title(drawn, tmp_path):
    files = []
    for name in ("mixup", "varmixup"):
        folder = tmp_path / name
        folder.mkdir()
        checkpoint = CHECKPOINT.replace("mixup", name)
        records = [{"measure": "local_linearity", "eps": e / 255, "n": 1000, "value": 0.01 * e,
                    "checkpoint": checkpoint} for e in (0, 2, 4, 8)]  # fmt: skip
        (folder / "results.json").write_text(json.dumps(records))
        files.append(folder / "results.json")
    linearity.plot_local_linearity(files, tmp_path / "ll.png", ["Mixup", "VarMixup"])
    (figure,) = drawn
    title = figure.get_suptitle()
    assert "Mixup: mixup/version_0/last.ckpt, n=1000" in title
    assert "VarMixup: varmixup/version_0/last.ckpt, n=1000" in title
    _check_legends_clear(figure)
    assert _check_markers_inside(figure) == 8


def test_linearity_figure_of_a_run_is_labelled_by_its_checkpoint(drawn, tmp_path):
    staging = tmp_path / ".staging-abc123"  # where a run draws its figures before the rename
    staging.mkdir()
    records = [{"measure": "local_linearity", "eps": 8 / 255, "n": 359, "value": 0.08,
                "checkpoint": CHECKPOINT}]  # fmt: skip
    (staging / "results.json").write_text(json.dumps(records))
    linearity.plot_local_linearity([staging / "results.json"], staging / "ll.png")
    (figure,) = drawn
    assert figure.get_suptitle() == "Local linearity error\nmixup/version_0/last.ckpt, n=359"
    assert [t.get_text() for t in figure.legends[0].get_texts()] == ["mixup/version_0/last.ckpt"]


def test_checkpoint_labels_and_percent_limits():
    assert base.checkpoint_label(CHECKPOINT) == "mixup/version_0/last.ckpt"
    assert base.checkpoint_label("/data/models/epoch=3.ckpt") == "data/models/epoch=3.ckpt"
    external = "torchvision.models.resnet18 @ models/resnet18_cifar10.pt"
    assert base.checkpoint_label(external) == "resnet18 @ models/resnet18_cifar10.pt"
    assert base.percent_limits([0.0, 3.3]) == (-1.0, 21.0)  # 0 % inside, with room
    assert base.percent_limits([98.6]) == (79.0, 101.0)  # 100 % inside too
    records = [{"defense": "none", "attack": "clean", "accuracy": 1.0}]
    assert "n=? (not recorded)" in base.records_title("x", records)


def test_the_linearity_plot_command_draws_without_a_runpy_warning(tmp_path):
    records = [{"measure": "local_linearity", "eps": e / 255, "n": 359, "value": 0.01 * e,
                "checkpoint": CHECKPOINT} for e in (8, 16)]  # fmt: skip
    (tmp_path / "results.json").write_text(json.dumps(records))
    (tmp_path / "other.json").write_text("[]")
    repo = Path(__file__).resolve().parents[2]
    environ = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "mixup_robust.evaluation.linearity.plot"]
    done = subprocess.run(
        [*command, str(tmp_path / "results.json"), "--out", str(tmp_path / "ll.png")],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0 and "RuntimeWarning" not in done.stderr, done.stderr
    assert (tmp_path / "ll.png").read_bytes()[:4] == b"\x89PNG" and "wrote" in done.stdout
    empty = subprocess.run([*command, str(tmp_path / "other.json")], cwd=tmp_path, env=environ,
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert empty.returncode == 1 and "no" in empty.stderr and "local-linearity" in empty.stderr

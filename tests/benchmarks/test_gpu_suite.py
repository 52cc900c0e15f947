"""benchmarks/gpu_suite.py: the dry run measures every part; caps, errors and overruns are kept.

The suite is for a GPU that this project is lent only now and then; these tests keep it
working meanwhile: the dry run (`--dry-run`, the same code on tiny sizes on the CPU) must
write every part's figures to the JSON and the Markdown, and the runner must stop a part at
its cap (keeping what it measured), record a failing part's error and go on.
"""

import json
import os
import subprocess
import sys
import time
from argparse import Namespace

import pytest
import torch

from mixup_robust.data import ImageFolderDataModule
from tests.helpers.cli import REPO

BENCHMARKS = REPO / "benchmarks"
PARTS = ["training", "recipe", "evaluation", "bf16"]


@pytest.fixture
def bench(monkeypatch):
    """The benchmark scripts importable as they import each other (benchmarks/ on the path)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import gpu_parts.runner
    import gpu_suite

    return Namespace(runner=gpu_parts.runner, suite=gpu_suite)


@pytest.mark.slow
def test_dry_run_writes_every_part_to_json_and_markdown(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, str(BENCHMARKS / "gpu_suite.py"), "--dry-run", "--out", str(out),
               "--threads", "1"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    data = json.loads((out / "gpu_suite.json").read_text())
    assert data["suite"]["finished"] and data["suite"]["dry_run"]
    assert data["environment"]["torch"] == torch.__version__
    parts = data["parts"]
    assert list(parts) == PARTS
    assert {name: part["status"] for name, part in parts.items()} == dict.fromkeys(PARTS, "ok")

    training = parts["training"]["tables"]
    options = ["bf16", "channels_last", "compile", "device_resident", "throttled progress bar"]
    assert [(row["method"], row["way"], row["option off"]) for row in training["runs"]] == [
        *[(method, way, "-") for method in ("erm", "mixup") for way in ("project", "plain")],
        *[("mixup", "project", option) for option in options],
        ("iat", "project", "-"), ("iat", "plain", "-"),
    ]  # fmt: skip
    for row in training["runs"]:
        assert row["timed steps"] == 2 and not row["stopped by cap"]
        assert row["images/s"] == pytest.approx(8 * 2 / row["timed s"])
        assert row["wall s"] >= row["timed s"] + row["warm-up s"] - 1e-3
    assert [row["method"] for row in training["overhead"]] == ["erm", "mixup", "iat"]
    assert [row["option"] for row in training["options"]] == options

    recipe = parts["recipe"]
    assert [row["epoch"] for row in recipe["tables"]["epochs"]] == [0, 1]
    assert all(row["steps"] == 6 for row in recipe["tables"]["epochs"])  # 100 images / 16
    info = recipe["info"]
    accuracy = next(value for key, value in info.items() if key.startswith("test accuracy"))
    assert 0 <= accuracy <= 100
    extrapolated = next(value for key, value in info.items() if key.startswith("EXTRAPOLATED"))
    fit = next(value for key, value in info.items() if key.startswith("fit wall s"))
    assert extrapolated > fit  # 60 epochs against the 2 run

    evaluation = parts["evaluation"]["tables"]
    runs = {row["way"]: row for row in evaluation["runs"]}
    assert set(runs) == {"project (batched)", "official structure (per image)",
                         "project EOTPGD (batched)", "torchattacks EOTPGD"}  # fmt: skip
    assert runs["project (batched)"]["points"] == 12
    reference = runs["official structure (per image)"]
    assert reference["points"] == 2
    assert reference["seconds scaled to all points"] == pytest.approx(reference["seconds"] * 6)
    assert runs["torchattacks EOTPGD"]["points"] == 4
    assert evaluation["chunk"][0]["default chunk (images)"] == 4096  # the CPU's
    assert len(evaluation["speed-up (project points/s over the reference's)"]) == 2

    bf16 = {row["figure"]: row["value"] for row in parts["bf16"]["tables"]["bf16 vs. fp32"]}
    assert bf16["points"] == 12
    assert 0 <= bf16["adversarial examples that differ (share of points)"] <= 1
    assert bf16["largest difference (x 255)"] <= 16 + 1e-3  # both within eps of the image
    assert parts["bf16"]["info"]["model"].startswith("FastCNN after 2 epochs")

    markdown = (out / "gpu_suite.md").read_text()
    for name in PARTS:
        assert f"## {name}: ok" in markdown
    assert "| method | way | option off | timed steps | images/s |" in markdown
    assert "EXTRAPOLATED full recipe fit s (60 epochs" in markdown


def test_runner_keeps_figures_of_cut_failed_and_overrunning_parts(bench, tmp_path, monkeypatch):
    runner = bench.runner
    monkeypatch.setattr(runner, "GRACE_S", 0.3)
    monkeypatch.setattr(runner, "MIN_PART_S", 0.05)
    recorder = runner.Recorder(tmp_path, {"dry_run": True})
    said: list[str] = []
    steps = []

    def checks_its_budget(budget, log):
        log.info("first figure", 1.5)
        written = json.loads((tmp_path / runner.JSON_NAME).read_text())
        assert written["parts"]["polite"]["info"] == {"first figure": 1.5}  # on disk at once
        while not budget.expired():
            steps.append(1)
            log.row("steps", {"step": len(steps)})
            time.sleep(0.02)

    def fails(budget, log):
        log.info("before the error", 2)
        raise ValueError("broken on purpose")

    def ignores_its_budget(budget, log):
        log.info("started", True)
        while True:
            time.sleep(0.01)

    suite = runner.Budget(60)
    statuses = [
        runner.run_part("polite", checks_its_budget, recorder, 0.2, suite, said.append),
        runner.run_part("failing", fails, recorder, 5, suite, said.append),
        runner.run_part("overrunning", ignores_its_budget, recorder, 0.2, suite, said.append),
        runner.run_part("late", checks_its_budget, recorder, 5, runner.Budget(0), said.append),
    ]
    assert statuses == ["cut off at its cap", "error", "cut off by the hard stop", "skipped"]
    parts = json.loads((tmp_path / runner.JSON_NAME).read_text())["parts"]
    assert len(parts["polite"]["tables"]["steps"]) == len(steps) > 0
    assert parts["polite"]["elapsed_s"] < 5  # stopped near its 0.2 s (slack for a loaded CPU)
    assert "ValueError: broken on purpose" in parts["failing"]["error"]
    assert parts["failing"]["info"] == {"before the error": 2}
    assert parts["overrunning"]["info"] == {"started": True}
    assert parts["overrunning"]["elapsed_s"] < 5  # 0.2 s cap + 0.3 s grace
    markdown = (tmp_path / runner.MARKDOWN_NAME).read_text()
    assert "## failing: error" in markdown and "broken on purpose" in markdown
    assert "| step |" in markdown
    assert any("[polite] first figure: 1.5" in line for line in said)


def test_training_part_stops_a_trainer_run_between_steps(bench, tmp_path):
    from gpu_parts.training import TrainingPart, TrainingSizes

    sizes = TrainingSizes("fast-tiny", 4, 1, 5, 1, 1, "eager", methods=("mixup",))
    part = TrainingPart(sizes, torch.device("cpu"), seed=0)
    calls = []

    def stop_after_two_checks() -> bool:
        calls.append(1)
        return len(calls) >= 2

    budget = Namespace(expired=stop_after_two_checks)
    log = bench.runner.PartLog(bench.runner.Recorder(tmp_path, {}), "training", 60, print)
    for way in ("project", "plain"):
        calls.clear()
        row = part.run(budget, log, "mixup", way, "compile")
        # One warm-up step, then the checks: the second one stops the run after a timed step.
        assert row["stopped by cap"] and row["timed steps"] == 1, row
        assert row["images/s"] == pytest.approx(4 / row["timed s"])


def test_training_part_order_and_optional_repeats(bench, monkeypatch):
    from gpu_parts.training import OPTIONS, TrainingPart, TrainingSizes

    part = TrainingPart(TrainingSizes("fast-tiny", 4, 1, 1, 1, 2, "eager"), torch.device("cpu"), 0)
    done = []
    monkeypatch.setattr(part, "run", lambda b, log, method, way, option: done.append(
        (method, way, option)) or {"wall s": 10.0})  # fmt: skip
    log = Namespace(info=lambda key, value: None)
    pairs = [(m, w, "-") for m in ("erm", "mixup", "iat") for w in ("project", "plain")]
    first = [*pairs[:4], *[("mixup", "project", option) for option in OPTIONS], *pairs[4:]]
    part(bench.runner.Budget(1000), log)
    assert done == first + pairs
    done.clear()
    part(bench.runner.Budget(25), log)  # room for no second pair (1.5 x 20 s)
    assert done == first


def test_bad_arguments_are_refused_before_any_compute(bench, tmp_path):
    suite = bench.suite
    with pytest.raises(SystemExit, match="PART=SECONDS"):
        suite.checked_plan(suite.parse_args(["--out", str(tmp_path), "--dry-run",
                                             "--cap", "nonsense=3"]))  # fmt: skip
    with pytest.raises(SystemExit, match="no such file"):
        suite.checked_plan(suite.parse_args(["--out", str(tmp_path), "--dry-run",
                                             "--data", str(tmp_path / "missing.zip")]))  # fmt: skip
    (tmp_path / "gpu_suite.json").write_text("{}")
    with pytest.raises(SystemExit, match="--overwrite"):
        suite.checked_plan(suite.parse_args(["--out", str(tmp_path), "--dry-run"]))
    plan, device, _ = suite.checked_plan(suite.parse_args(
        ["--out", str(tmp_path), "--dry-run", "--overwrite", "--cap", "bf16=7.5"]))  # fmt: skip
    assert plan.caps["bf16"] == 7.5 and suite.DRY.caps["bf16"] == 300  # the default unchanged
    assert device.type == "cpu"


def test_fake_zip_has_the_real_zips_layout(bench, tmp_path):
    from gpu_parts.fake_data import CLASSES, fake_cifar_zip

    path = fake_cifar_zip(tmp_path / "fake.zip", train_per_class=3, test_per_class=2)
    data = ImageFolderDataModule(root=str(path), val_size=0, batch_size=4)
    train_images, train_labels = data.arrays["train"]
    test_images, test_labels = data.arrays["test"]
    assert train_images.shape == (30, 3, 32, 32) and test_images.shape == (20, 3, 32, 32)
    assert torch.bincount(train_labels).tolist() == [3] * len(CLASSES)
    assert torch.bincount(test_labels).tolist() == [2] * len(CLASSES)


def test_recipe_clock_stops_between_steps_and_extrapolates_whole_epochs(bench, tmp_path):
    from gpu_parts.recipe import EpochClock, RecipePart

    calls, rows = [], []
    clock = EpochClock(torch.device("cpu"), lambda: calls.append(1) or len(calls) >= 2,
                       rows.append)  # fmt: skip
    trainer = Namespace(num_training_batches=4, current_epoch=1, max_epochs=3, should_stop=False,
                        datamodule=Namespace(batch_size=16), callback_metrics={})  # fmt: skip
    clock.on_fit_start(trainer, None)
    clock.on_train_epoch_start(trainer, None)
    for batch in range(2):
        assert not trainer.should_stop
        clock.on_train_batch_end(trainer, None, None, None, batch)
    assert trainer.should_stop and clock.stopped  # after the second step of four
    clock.on_train_epoch_end(trainer, None)
    assert rows[0]["steps"] == 2 and rows[0]["images"] == 32 and not rows[0]["complete"]

    clock.epochs = [
        {"images": 64, "train s": 9.0, "epoch wall s": 10.0, "complete": True},
        {"images": 64, "train s": 1.0, "epoch wall s": 2.0, "complete": True},
        {"images": 16, "train s": 0.5, "epoch wall s": 0.5, "complete": False},  # cut
    ]
    log = bench.runner.PartLog(bench.runner.Recorder(tmp_path, {}), "recipe", 60, print)
    RecipePart.figures(None, log, clock, 60, fit_s=20.0)
    info = log.entry["info"]
    assert info["training images/s"] == pytest.approx(80 / 1.5)  # the epochs after the first
    assert info["epoch wall s, median"] == 2.0  # whole epochs only
    extrapolated = next(value for key, value in info.items() if key.startswith("EXTRAPOLATED"))
    assert extrapolated == pytest.approx((20 - 12.5) + 10 + 59 * 2)

"""What an evaluation writes: whole run files or none, never over old ones, predictions, plots."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mixup_robust.atomic import write_atomically
from mixup_robust.evaluation.defense import figures as plots
from mixup_robust.evaluation.run_files import refuse_overwrite, staged_run_files
from tests.helpers.cli import CONF, REPO, resolved_config, run_cli


def small_evaluation(tmp_path: Path, checkpoint: Path, **init_args) -> Path:
    """The tiny evaluation (tests/conf) on 60 test points, PGD-10 only, as a config file."""
    resolved = resolved_config("test", CONF / "evaluate.yaml")
    # Only the parts every subcommand takes: `verbose` is test's own, and predict refuses it.
    config = {key: resolved[key] for key in ("seed_everything", "trainer", "model", "data")}
    config["model"]["init_args"].update(checkpoint=str(checkpoint), **init_args)
    config["model"]["init_args"]["attacks"] = config["model"]["init_args"]["attacks"][:1]
    config["data"]["init_args"].update(test_subset_size=60, eval_batch_size=20)
    path = tmp_path / "evaluate.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# ---------------------------------------------------------------- 3, 4. run files
def test_a_directory_holding_any_file_of_a_run_is_refused(tmp_path):
    for name in ("config.yaml", "tradeoff.png", "results.csv"):
        directory = tmp_path / name.replace(".", "_")
        directory.mkdir()
        (directory / name).write_text("earlier run")
        with pytest.raises(FileExistsError, match=name):
            refuse_overwrite(directory)
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "config.yaml").write_text("this run's, written by Lightning")
    refuse_overwrite(tmp_path / "own", config_is_ours=False)  # Lightning's own config is fine


def test_run_files_appear_together_or_not_at_all(tmp_path):
    with pytest.raises(RuntimeError, match="drawing failed"):
        with staged_run_files(tmp_path) as stage:
            (stage / "results.json").write_text("[]")
            raise RuntimeError("drawing failed")
    assert list(tmp_path.iterdir()) == []
    with staged_run_files(tmp_path) as stage:
        for name in ("results.json", "results.csv", "config.yaml"):
            (stage / name).write_text(name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "results.csv",
                                                          "results.json"]  # fmt: skip


def test_evaluation_refuses_an_output_dir_with_an_old_config(digits_checkpoint, tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    (output / "config.yaml").write_text("the config of an earlier run\n")
    config = small_evaluation(tmp_path, digits_checkpoint, output_dir=str(output))
    with pytest.raises(FileExistsError, match=r"config.yaml"):
        run_cli("test", "--config", config, "--trainer.default_root_dir", tmp_path / "logs")
    assert [p.name for p in output.iterdir()] == ["config.yaml"]


def test_result_files_get_the_umask_mode(tmp_path):
    previous = os.umask(0o022)
    try:
        write_atomically(tmp_path / "a.json", "{}")
        with staged_run_files(tmp_path / "run") as stage:
            (stage / "results.json").write_text("[]")
        records = [{"defense": "none", "attack": a, "accuracy": 0.5} for a in ("clean", "PGD")]
        plots.plot_tradeoff(records, tmp_path / "tradeoff.png")
    finally:
        os.umask(previous)
    for path in (tmp_path / "a.json", tmp_path / "run" / "results.json", tmp_path / "tradeoff.png"):
        assert path.stat().st_mode & 0o777 == 0o644, path


# ---------------------------------------------------------------- 11, 12. progress, predict
def test_evaluation_shows_progress_and_logs_every_result(digits_checkpoint, tmp_path, capsys):
    config = small_evaluation(tmp_path, digits_checkpoint)
    cli = run_cli(
        "test", "--config", config, "--trainer.default_root_dir", tmp_path,
        "--trainer.enable_progress_bar", "false", "--trainer.logger", "CSVLogger",
        "--trainer.logger.save_dir", tmp_path,
    )  # fmt: skip
    progress = cli.model.progress
    assert progress.total == progress.done == 3 * 2  # 3 batches x (clean, PGD-10)
    log = capsys.readouterr().err  # no terminal: one line per step, with the time left
    assert log.count("evaluation: ") == 6 and "6/6 steps, PGD-10 done" in log
    assert "left" in log.splitlines()[-1]
    run = Path(cli.trainer.log_dir)
    records = json.loads((run / "results.json").read_text())
    with open(run / "metrics.csv") as file:
        logged = next(csv.DictReader(file))
    for record in records:
        key = f"{record['defense']}/{record['attack']}/accuracy"
        assert float(logged[key]) == pytest.approx(record["accuracy"])


def test_predict_writes_each_defenses_prediction_per_sample(digits_checkpoint, tmp_path):
    config = small_evaluation(tmp_path, digits_checkpoint)
    cli = run_cli("predict", "--config", config, "--trainer.default_root_dir", tmp_path)
    with open(Path(cli.trainer.log_dir) / "predictions.csv") as file:
        rows = list(csv.DictReader(file))
    datamodule = cli.datamodule
    assert [int(r["index"]) for r in rows] == datamodule.split_indices["test"].tolist()
    images, labels = datamodule.arrays["test"]
    index = datamodule.split_indices["test"]
    logits = cli.model.classifier(images[index].float() / 255)
    assert [int(r["none prediction"]) for r in rows] == logits.argmax(1).tolist()
    assert [int(r["label"]) for r in rows] == labels[index].tolist()
    for name in ("MI-PL", "MI-OL"):
        assert all(0 < float(r[f"{name} confidence"]) <= 1 for r in rows)
    with pytest.raises(FileExistsError, match="predictions"):
        run_cli("predict", "--config", config, "--trainer.default_root_dir", tmp_path,
                "--model.init_args.output_dir", cli.trainer.log_dir)  # fmt: skip


def test_predict_of_a_training_method_writes_its_predictions(digits_checkpoint, tmp_path):
    cli = run_cli(
        "predict", "--config", CONF / "mixup.yaml", "--ckpt_path", digits_checkpoint,
        "--model.init_args.net.init_args.width", 8, "--trainer.default_root_dir", tmp_path,
    )  # fmt: skip
    with open(Path(cli.trainer.log_dir) / "predictions.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len(cli.datamodule.split_indices["test"])
    assert set(rows[0]) == {"index", "label", "prediction", "confidence"}


@pytest.mark.slow
def test_predict_under_ddp_writes_every_sample_once(digits_checkpoint, tmp_path):
    config = small_evaluation(tmp_path, digits_checkpoint)
    tables = {}
    for devices in (1, 2):
        output, strategy = tmp_path / f"devices{devices}", "ddp" if devices == 2 else "auto"
        command = [
            sys.executable, str(REPO / "cli.py"), "predict", "--config", str(config),
            "--trainer.default_root_dir", str(tmp_path / "logs"), "--trainer.accelerator", "cpu",
            "--trainer.devices", str(devices), "--trainer.strategy", strategy,
            "--model.init_args.output_dir", str(output),
        ]  # fmt: skip
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        tables[devices] = (output / "predictions.csv").read_text()
    assert tables[1] == tables[2] and len(tables[1].splitlines()) == 60 + 1


# ---------------------------------------------------------------- 13. plots
def test_tradeoff_axes_are_percent_from_a_round_floor(tmp_path, monkeypatch):
    # Round limits (0-20, 70-100) and 5 % of their span beyond them: a point on 0 % is whole.
    assert plots.percent_limits([12.5]) == (-1.0, 21.0)
    assert plots.percent_limits([83.9, 93.8]) == (68.5, 101.5)
    drawn = []
    monkeypatch.setattr(plots, "save_figure", lambda figure, path: drawn.append(figure) or path)
    records = [
        {"defense": d, "attack": a, "accuracy": 0.125}
        for d in ("none", "MI-OL") for a in ("clean", "PGD-10")
    ]  # fmt: skip
    plots.plot_tradeoff(records, tmp_path / "tradeoff.png")
    axis = drawn[0].axes[0]
    assert axis.get_xlim() == (-1.0, 21.0) and axis.get_ylim() == (-1.0, 21.0)
    drawn[0].canvas.draw()
    legend = drawn[0].legends[0]  # below the panels, clear of the axes and their labels
    assert legend.get_window_extent().y1 < axis.get_tightbbox().y0


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not valid JSON"), ("[]", "no result records"), ("[1, 2]", "Record 0"),
     ('[{"defense": "none", "attack": "clean", "accuracy": 0.9}]', "supports no figure")],
)  # fmt: skip
def test_the_plots_command_fails_with_the_reason(tmp_path, capsys, content, message):
    results = tmp_path / "results.json"
    results.write_text(content)
    with pytest.raises(SystemExit) as raised:
        plots.main([str(results)])
    assert raised.value.code == 1 and message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]

"""What a run shows: no third-party noise, and a bad input's own message in a few lines.

The command line is run as a user runs it (`python cli.py ...` in a subprocess), and its
stdout and stderr are read whole.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mixup_robust.console import short_parser_message
from mixup_robust.training import RichBar
from tests.helpers.cli import CONF, REPO, run_cli

NOISE = ("litlogger", "Tip:", "LeafSpec", "deprecated", "tensorboardX", "v_num", "Warning")


def cli(*args: str | Path, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **env}
    for variable in ("MIXUP_ROBUST_VERBOSE", "MIXUP_ROBUST_TRACEBACK"):
        environ.setdefault(variable, "")
    return subprocess.run(
        [sys.executable, "cli.py", *map(str, args)], cwd=REPO, env=environ,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.mark.slow
def test_a_fit_and_a_test_show_no_third_party_noise(tmp_path):
    fit = cli(
        "fit", "--config", CONF / "mixup.yaml", "--trainer.default_root_dir", tmp_path / "fit"
    )
    assert fit.returncode == 0, fit.stderr[-3000:]
    run = tmp_path / "fit" / "lightning_logs" / "version_0"
    assert list(run.glob("events.out.tfevents.*"))  # TensorBoard is the logger
    assert "train/loss" in fit.stdout + fit.stderr  # the bar was drawn
    test = cli(
        "test", "--config", CONF / "evaluate.yaml",
        "--model.init_args.checkpoint", run / "checkpoints" / "last.ckpt",
        "--model.init_args.output_dir", tmp_path / "eval",
        "--trainer.default_root_dir", tmp_path / "logs", "--trainer.limit_test_batches", "1",
    )  # fmt: skip
    assert test.returncode == 0, test.stderr[-3000:]
    assert (tmp_path / "eval" / "results.json").is_file()
    for done in (fit, test):
        shown = done.stdout + done.stderr
        assert not [noise for noise in NOISE if noise in shown], shown[-3000:]


def test_the_bar_shows_no_v_num(tmp_path):
    trained = run_cli(
        "fit", "--config", CONF / "mixup.yaml", "--trainer.default_root_dir", tmp_path,
        "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
    )  # fmt: skip
    bar = trained.trainer.progress_bar_callback
    assert isinstance(bar, RichBar)
    metrics = bar.get_metrics(trained.trainer, trained.model)
    assert "v_num" not in metrics and "train/loss_step" in metrics


# ---------------------------------------------------------------- errors first
def test_a_misspelt_key_is_one_line_and_a_hint(tmp_path):
    config = tmp_path / "typo.yaml"
    config.write_text((CONF / "mixup.yaml").read_text().replace("alpha:", "alhpa:"))
    done = cli("fit", "--config", config, "--trainer.default_root_dir", tmp_path / "runs")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2, done.stderr
    assert lines[0].startswith("error: Option 'alhpa' is not accepted")
    assert "mixup_robust.training.Mixup" in lines[0]
    assert "`python cli.py fit --help`" in lines[1]
    assert not (tmp_path / "runs").exists()


def test_a_missing_checkpoint_is_its_message_without_traceback(tmp_path):
    done = cli(
        "test", "--config", CONF / "evaluate.yaml",
        "--model.init_args.checkpoint", tmp_path / "missing.ckpt",
        "--trainer.default_root_dir", tmp_path / "runs",
    )  # fmt: skip
    assert done.returncode == 1
    errors = done.stderr.strip().splitlines()
    assert len(errors) <= 6, done.stderr  # Lightning's three info lines, the error, the hint
    assert "Traceback" not in done.stderr
    assert errors[-2].startswith("error: FileNotFoundError: No checkpoint at")
    assert "MIXUP_ROBUST_TRACEBACK=1" in errors[-1]
    assert not list((tmp_path / "runs").rglob("version_*"))  # no empty run folder


def test_an_evaluation_without_a_checkpoint_names_the_option_before_compute(tmp_path):
    """Shipped evaluation configs name no checkpoint: leaving it out is a parser error."""
    done = cli(
        "test", "--config", REPO / "configs" / "eval" / "cifar10_mixup_table2.yaml",
        "--trainer.default_root_dir", tmp_path / "runs",
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2, done.stderr
    assert lines[0] == (
        "error: the following arguments are required: checkpoint "
        "(model > mixup_robust.evaluation.DefenseEvaluation): give "
        "--model.init_args.checkpoint <value> on the command line or in the config"
    )
    assert not (tmp_path / "runs").exists()  # stopped in the parser: no data, no run folder


def test_the_details_come_back_on_request(tmp_path):
    done = cli(
        "test", "--config", CONF / "evaluate.yaml", "--verbose",
        "--model.init_args.checkpoint", tmp_path / "missing.ckpt",
        "--trainer.default_root_dir", tmp_path / "runs",
    )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "No checkpoint at" in done.stderr
    assert "litlogger" in done.stdout + done.stderr  # the third-party notices are back
    config = tmp_path / "typo.yaml"
    config.write_text((CONF / "mixup.yaml").read_text().replace("alpha:", "alhpa:"))
    done = cli("fit", "--config", config, MIXUP_ROBUST_VERBOSE="1")
    assert done.returncode == 2 and "Does not validate against" in done.stderr
    assert "usage:" in done.stderr  # jsonargparse's whole text


def test_a_refusal_before_compute_leaves_no_run_folder_and_keeps_others(
    tmp_path, digits_checkpoint
):
    earlier = tmp_path / "lightning_logs" / "version_0"
    earlier.mkdir(parents=True)
    (earlier / "config.yaml").write_text("model: earlier\n")
    with pytest.raises(FileNotFoundError, match="No checkpoint at"):
        run_cli(
            "test", "--config", CONF / "evaluate.yaml",
            "--model.init_args.checkpoint", tmp_path / "missing.ckpt",
            "--trainer.default_root_dir", tmp_path,
        )  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "lightning_logs").iterdir()) == ["version_0"]
    assert (earlier / "config.yaml").read_text() == "model: earlier\n"
    # A run that computed keeps its folder even when it fails afterwards.
    done = run_cli(
        "test", "--config", CONF / "evaluate.yaml", "--model.init_args.checkpoint",
        digits_checkpoint, "--trainer.default_root_dir", tmp_path,
        "--trainer.limit_test_batches", "1",
    )  # fmt: skip
    assert (Path(done.trainer.log_dir) / "results.json").is_file()


def test_redrawing_figures_gives_no_runpy_warning(tmp_path):
    (tmp_path / "empty.json").write_text("[]")
    environ = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mixup_robust.evaluation.redraw", str(tmp_path / "empty.json")],
        cwd=REPO, env=environ, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1 and "no result records" in done.stderr
    assert "RuntimeWarning" not in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("message", "short"),
    [
        ('Parser key "model":\n  Does not validate against any of the Union subtypes\n'
         "  Subtypes: [<class 'LightningModule'>, <class 'NoneType'>]\n  Errors:\n"
         "    - Problem with given class_path 'mixup_robust.training.Mixup':\n"
         "        Option 'alhpa' is not accepted\n    - Expected a <class 'NoneType'>\n"
         "  Given value type: <class 'dict'>\n  Given value: {'class_path': '...'}",
         "Option 'alhpa' is not accepted (model > mixup_robust.training.Mixup)"),
        ('Parser key "trainer.max_epochs":\n  Does not validate against any of the Union '
         "subtypes\n  Subtypes: [<class 'int'>, <class 'NoneType'>]\n  Errors:\n"
         "    - Expected a <class 'int'>\n    - Expected a <class 'NoneType'>\n"
         "  Given value type: <class 'str'>\n  Given value: abc",
         "Expected a <class 'int'>, got abc (trainer.max_epochs)"),
        ("unrecognized arguments: --trainer.max_epochz 3",
         "unrecognized arguments: --trainer.max_epochz 3"),
        ('Parser key "model":\n  Does not validate against any of the Union subtypes\n'
         "  Errors:\n    - Problem with given class_path 'mixup_robust.evaluation.DefenseAudit':\n"
         "        the following arguments are required: checkpoint, rungs\n"
         "    - Expected a <class 'NoneType'>",
         "the following arguments are required: checkpoint, rungs "
         "(model > mixup_robust.evaluation.DefenseAudit): give --model.init_args.checkpoint, "
         "--model.init_args.rungs <value> on the command line or in the config"),
        ('Parser key "model":\n  Does not validate against any of the Union subtypes\n'
         "  Errors:\n    - Problem with given class_path 'mixup_robust.evaluation.X':\n"
         "    - Problem with given class_path 'mixup_robust.defenses.Y':\n"
         "        the following arguments are required: vae_ckpt\n",
         "the following arguments are required: vae_ckpt "
         "(model > mixup_robust.evaluation.X > mixup_robust.defenses.Y)"),
    ],
)  # fmt: skip
def test_the_parsers_useful_line(message, short):
    assert short_parser_message(message) == short

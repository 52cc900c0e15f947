"""Nothing silent (issue 10): each run that would give wrong or lost results stops and says why."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.callbacks import RichProgressBar

from mixup_robust.atomic import write_atomically
from mixup_robust.cli import SIGTERM_EXIT_STATUS, MixupRobustCLI, trainer_defaults
from mixup_robust.data import DigitsDataModule
from mixup_robust.data.image_folder import open_archive
from mixup_robust.defenses import MixupInference, RandomRotation
from mixup_robust.evaluation import ParameterSweep, load_classifier, plots
from mixup_robust.evaluation.reports import refuse_overwrite, staged_run_files
from mixup_robust.training import Mixup
from mixup_robust.training.guards import FiniteTraining, NonFiniteLossError, NonFiniteWeightsError
from tests.conftest import REPO, fit_digits, last_checkpoint, resolved_config, run_cli

QUICKSTART = REPO / "configs" / "quickstart"


def parse_only(*args: str) -> MixupRobustCLI:
    """The CLI with its classes and trainer built but nothing run."""
    return MixupRobustCLI(
        model_class=None, datamodule_class=None, subclass_mode_model=True,
        subclass_mode_data=True, trainer_defaults=trainer_defaults(),
        seed_everything_default=0, run=False, args=[str(a) for a in args],
    )  # fmt: skip


def small_evaluation(tmp_path: Path, checkpoint: Path, **init_args) -> Path:
    """The quickstart evaluation on 60 test points, PGD-10 only, as a config file."""
    resolved = resolved_config("test", QUICKSTART / "evaluate.yaml")
    # Only the parts every subcommand takes: `verbose` is test's own, and predict refuses it.
    config = {key: resolved[key] for key in ("seed_everything", "trainer", "model", "data")}
    config["model"]["init_args"].update(checkpoint=str(checkpoint), **init_args)
    config["model"]["init_args"]["attacks"] = config["model"]["init_args"]["attacks"][:1]
    config["data"]["init_args"].update(test_subset_size=60, eval_batch_size=20)
    path = tmp_path / "evaluate.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# ---------------------------------------------------------------- 1. non-finite loss
def test_non_finite_loss_stops_training_and_no_checkpoint_holds_it(tmp_path):
    lr = "model.init_args.optimizer.init_args.lr"
    with pytest.raises(NonFiniteLossError, match=rf"epoch 0, batch \d+ .*{lr}"):
        fit_digits(tmp_path, "mixup", 2, f"--{lr}", "1e6")
    for checkpoint in tmp_path.rglob("*.ckpt"):  # none at all, or only finite ones
        state = torch.load(checkpoint, weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_a_checkpoint_of_non_finite_weights_is_never_written():
    checkpoint = {"state_dict": {"w": torch.tensor([1.0, float("nan")]), "steps": torch.ones(1)}}
    with pytest.raises(NonFiniteWeightsError, match="NaN or inf"):
        FiniteTraining().on_save_checkpoint(_FakeTrainer(), None, checkpoint)


class _FakeTrainer:
    current_epoch, global_step = 3, 120


def test_measurements_refuse_a_checkpoint_with_non_finite_weights(digits_checkpoint, tmp_path):
    contents = torch.load(digits_checkpoint, weights_only=True)
    name = next(k for k in contents["state_dict"] if k.endswith("weight"))
    contents["state_dict"][name][0] = float("inf")
    broken = tmp_path / "diverged.ckpt"
    torch.save(contents, broken)
    with pytest.raises(ValueError, match="non-finite weights"):
        load_classifier(str(broken))


# ---------------------------------------------------------------- 2. sweeps
@pytest.mark.parametrize(
    ("parameter", "value", "message"),
    [("mixup_ratio", 1.5, r"must lie in \[0, 1\]"), ("mixup_ratio", -2, r"must lie in \[0, 1\]"),
     ("n_executions", 0, "at least 1")],
)  # fmt: skip
def test_swept_values_are_validated_by_the_constructor(parameter, value, message):
    with pytest.raises(ValueError, match=f"invalid value {value}.*{message}"):
        ParameterSweep(MixupInference("other", 0.5, 30), parameter, [0.5, value])


def test_a_sweep_builds_each_variant_with_the_other_arguments_kept():
    base = MixupInference("predicted", 0.5, n_executions=7, chunk_size=99)
    variants = ParameterSweep(base, "mixup_ratio", [0.2, 0.8]).expand()
    assert [v.mixup_ratio for v, _ in variants] == [0.2, 0.8]
    assert all((v.partner_label, v.n_executions, v.chunk_size) == ("predicted", 7, 99)
               for v, _ in variants)  # fmt: skip
    assert [v.name for v, _ in variants] == ["MI-PL mixup_ratio=0.2", "MI-PL mixup_ratio=0.8"]
    assert variants[1][1] == {"sweep": "MI-PL", "parameter": "mixup_ratio", "value": 0.8}
    with pytest.raises(ValueError, match="no parameter 'sigma'"):
        ParameterSweep(RandomRotation(), "sigma", [1.0])


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
    with pytest.raises(FileExistsError, match="config.yaml"):
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


# ---------------------------------------------------------------- 6. schedule length
def test_extending_a_finished_cosine_run_is_refused(tmp_path):
    finished = fit_digits(tmp_path / "one", "mixup", 1)
    with pytest.raises(ValueError, match="max_epochs=1.*max_epochs=2.*--trainer.max_epochs 1"):
        fit_digits(tmp_path / "two", "mixup", 2, "--ckpt_path", finished)
    assert not list((tmp_path / "two").rglob("*.ckpt"))


# ---------------------------------------------------------------- 7. one seed
def test_seed_everything_drives_every_seed_unless_one_is_set():
    config = QUICKSTART / "mixup.yaml"
    three = parse_only("--config", config, "--seed_everything", "3")
    four = parse_only("--config", config, "--seed_everything", "4")
    assert (three.model.seed, three.datamodule.seed) == (3, 3)
    assert (four.model.seed, four.datamodule.seed) == (4, 4)
    splits = [cli.datamodule.split_indices["val"] for cli in (three, four)]
    assert not torch.equal(*splits)  # the validation split follows the run's seed
    own = parse_only(
        "--config", config, "--seed_everything", "3",
        "--model.init_args.seed", "7", "--data.init_args.seed", "8",
    )  # fmt: skip
    assert (own.model.seed, own.datamodule.seed, own.model.hparams.seed) == (7, 8, 7)


# ---------------------------------------------------------------- 8. progress bar
def test_the_progress_bar_can_be_switched_off():
    config = QUICKSTART / "mixup.yaml"
    quiet = parse_only("--config", config, "--trainer.enable_progress_bar", "false")
    assert quiet.trainer.progress_bar_callback is None
    default = parse_only("--config", config)
    assert isinstance(default.trainer.progress_bar_callback, RichProgressBar)


# ---------------------------------------------------------------- 9. errors in a few lines
@pytest.mark.parametrize(
    ("args", "message"),
    [(["fit", "--config", QUICKSTART / "mixup.yaml", "--model.init_args.alpha", "-1"],
      "alpha=-1.0: the mixup ratio"),
     (["fit", "--config", QUICKSTART / "mixup.yaml", "--data.init_args.batch_size", "0"],
      "batch_size and eval_batch_size must be at least 1"),
     (["test", "--config", QUICKSTART / "evaluate.yaml",
       '--model.init_args.attacks=[{"class_path": "mixup_robust.attacks.PGD", '
       '"init_args": {"eps": -0.1}}]'], "eps=-0.1 is -0.1000 in pixel units")],
)  # fmt: skip
def test_a_class_error_reaches_the_user_in_a_few_lines(args, message):
    with pytest.raises(ValueError) as raised:
        run_cli(*args)
    shown = "".join(traceback.format_exception(raised.value))
    assert message in shown.splitlines()[-1]
    assert "Union subtypes" not in shown and len(shown.splitlines()) < 15, shown


# ---------------------------------------------------------------- 10. messages
def test_a_truncated_zip_is_called_damaged(tmp_path):
    archive = tmp_path / "data.zip"
    shutil.make_archive(str(tmp_path / "data"), "zip", REPO / "configs")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(ValueError, match="damaged or truncated"):
        with open_archive(archive):
            pass


def test_a_text_file_is_not_a_checkpoint_and_weights_only_is_never_suggested(tmp_path):
    text = tmp_path / "notes.ckpt"
    text.write_text("epoch 3: loss 0.12\n")
    with pytest.raises(ValueError, match="is not a checkpoint") as raised:
        load_classifier(str(text))
    assert "weights_only" not in str(raised.value)


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
    assert "batch 3, 6/6 attack steps" in capsys.readouterr().err
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
        "predict", "--config", QUICKSTART / "mixup.yaml", "--ckpt_path", digits_checkpoint,
        "--model.init_args.net.init_args.width", 8, "--trainer.default_root_dir", tmp_path,
    )  # fmt: skip
    with open(Path(cli.trainer.log_dir) / "predictions.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == len(cli.datamodule.split_indices["test"])
    assert set(rows[0]) == {"index", "label", "prediction", "confidence"}


# ---------------------------------------------------------------- 13. plots
def test_tradeoff_axes_are_percent_from_a_round_floor(tmp_path, monkeypatch):
    assert plots.percent_limits([12.5]) == (0.0, 20.0)
    assert plots.percent_limits([83.9, 93.8]) == (70.0, 100.0)
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda figure, path: drawn.append(figure) or path)
    records = [
        {"defense": d, "attack": a, "accuracy": 0.125}
        for d in ("none", "MI-OL") for a in ("clean", "PGD-10")
    ]  # fmt: skip
    plots.plot_tradeoff(records, tmp_path / "tradeoff.png")
    axis = drawn[0].axes[0]
    assert axis.get_xlim() == (0.0, 20.0) and axis.get_ylim() == (0.0, 20.0)
    legend = axis.get_legend()
    assert legend is not None and legend.get_bbox_to_anchor().x0 > axis.bbox.x1 - 1


def test_a_run_resumes_with_the_same_length(tmp_path):
    """The length check refuses only a different max_epochs (a resume with the same one runs)."""
    steps_per_epoch = len(DigitsDataModule(batch_size=64, val_size=0.1).train_dataloader())
    first = fit_digits(tmp_path, "mixup", 2, "--trainer.max_steps", steps_per_epoch)
    fit_digits(tmp_path, "mixup", 2, "--ckpt_path", first)
    resumed = torch.load(last_checkpoint(tmp_path), weights_only=True)
    assert resumed["global_step"] == 2 * steps_per_epoch


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


class _FakeStrategy:
    @staticmethod
    def reduce_boolean_decision(decision: bool, all: bool = True) -> bool:  # noqa: A002
        return decision


class _FakeLoopTrainer:
    current_epoch, global_step, optimizers = 2, 0, []
    strategy = _FakeStrategy()


def test_a_deferred_loss_check_names_the_first_non_finite_step():
    guard, trainer = FiniteTraining(every_n_steps=4), _FakeLoopTrainer()
    losses = [1.0, 0.5, float("nan"), 2.0]
    for batch_idx, loss in enumerate(losses[:3]):
        trainer.global_step = batch_idx
        guard.on_train_batch_end(trainer, None, torch.tensor(loss), None, batch_idx)
    # Nothing read yet (no sync): the fourth step reads all four and names the third.
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, batch 2 \(optimizer step 2\)"):
        guard.on_train_batch_end(trainer, None, torch.tensor(losses[3]), None, 3)


def test_a_checkpoint_save_reads_the_pending_losses_first():
    guard, trainer = FiniteTraining(every_n_steps=50), _FakeLoopTrainer()
    guard.on_train_batch_end(trainer, None, torch.tensor(float("inf")), None, 0)
    checkpoint = {"state_dict": {"w": torch.ones(2)}}
    with pytest.raises(NonFiniteLossError, match="batch 0"):
        guard.on_save_checkpoint(trainer, None, checkpoint)


def test_a_run_stopped_by_sigterm_exits_with_the_killed_status(tmp_path, monkeypatch, capsys):
    original = Mixup.training_step

    def training_step(self, batch, batch_idx):
        if self.global_step == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill` or a scheduler sends it
        return original(self, batch, batch_idx)

    monkeypatch.setattr(Mixup, "training_step", training_step)
    with pytest.raises(SystemExit) as stopped:
        fit_digits(tmp_path, "mixup", 3)
    assert stopped.value.code == SIGTERM_EXIT_STATUS == 143
    message = capsys.readouterr().err
    assert "Stopped by SIGTERM" in message and "--ckpt_path" in message
    # Nothing pretends the run finished: no checkpoint after the third epoch exists.
    assert not list(tmp_path.glob("lightning_logs/version_*/checkpoints/*epoch=2*"))

"""The per-sample store and the run directory's guards, on in-process runs of the digits.

The store holds one row per defense, attack and sample, and switching it off changes no
result; nothing is computed when the directory is a file, locked by a live run, or holds an
unfinished run of another config (the differing keys are named); a killed run's lock and
staging folders are taken over and removed; a figure that cannot be written leaves the
results and the printed table.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mixup_robust.evaluation.measurement import MeasurementModule
from mixup_robust.evaluation.run_guard import LOCK_FILE
from tests.helpers.evaluations import evaluate, evaluation_config
from tests.helpers.kills import counted_work


@pytest.fixture
def config(digits_checkpoint, tmp_path) -> Path:
    """PGD-10 only, 2 trials, on 40 test points in batches of 20."""
    return evaluation_config(tmp_path, digits_checkpoint, 40, trials=2)


def test_the_store_holds_every_sample_once_and_switching_it_off_changes_nothing(
    config, tmp_path, monkeypatch
):
    records = evaluate(config, tmp_path / "stored")
    with sqlite3.connect(tmp_path / "stored" / "samples-rank0.sqlite") as connection:
        units = connection.execute("SELECT count(*) FROM units").fetchone()[0]
        per_cell = connection.execute(
            "SELECT trial, defense, attack, count(*), count(DISTINCT sample), sum(correct) "
            "FROM samples GROUP BY trial, defense, attack"
        ).fetchall()
    assert units == 2 * 2  # 2 batches x 2 trials
    assert len(per_cell) == 2 * 3 * 2  # trials x defenses x (clean, PGD-10)
    assert all(count == distinct == 40 for _, _, _, count, distinct, _ in per_cell)
    accuracy = {(r["defense"], r["attack"]): r["accuracy"] for r in records}
    for defense, attack in accuracy:  # the mean over trials of the stored right answers
        rights = [right for _, d, a, _, _, right in per_cell if (d, a) == (defense, attack)]
        assert accuracy[defense, attack] == pytest.approx(sum(rights) / 80)
    monkeypatch.setattr(MeasurementModule, "use_store", False)
    assert evaluate(config, tmp_path / "memory") == records
    assert not list((tmp_path / "memory").glob("*.sqlite"))
    for name in ("results.json", "results.csv", "trials.csv"):
        stored, memory = tmp_path / "stored" / name, tmp_path / "memory" / name
        assert stored.read_bytes() == memory.read_bytes(), name


def test_nothing_is_computed_in_a_file_or_a_locked_directory(config, tmp_path):
    (tmp_path / "file").write_text("not a directory")
    locked = tmp_path / "locked"
    locked.mkdir()
    holder = {"pid": os.getppid(), "host": os.uname().nodename, "since": 0}
    (locked / LOCK_FILE).write_text(json.dumps(holder))
    with counted_work() as calls:
        with pytest.raises(NotADirectoryError, match="is a file"):
            evaluate(config, tmp_path / "file")
        with pytest.raises(FileExistsError, match=f"Another run .* process {os.getppid()}"):
            evaluate(config, locked)
    assert calls[0] == 0
    assert json.loads((locked / LOCK_FILE).read_text()) == holder  # the live run's lock stays


def test_a_killed_runs_lock_and_staging_folders_are_taken_over(config, tmp_path, capsys):
    output = tmp_path / "out"
    output.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    holder = {"pid": int(gone.stdout), "host": os.uname().nodename, "since": 0}
    (output / LOCK_FILE).write_text(json.dumps(holder))
    (output / ".staging-killed").mkdir()
    (output / ".staging-killed" / "results.csv").write_text("half")
    evaluate(config, output)
    err = capsys.readouterr().err
    assert f"taking over the lock of process {holder['pid']}" in err
    assert "removed" in err and ".staging-killed" in err
    assert not (output / ".staging-killed").exists() and not (output / LOCK_FILE).exists()


def test_an_unfinished_run_of_another_config_is_refused_with_the_differences(config, tmp_path):
    output = tmp_path / "out"
    with counted_work(kill_at=3, signum=signal.SIGTERM):  # stops after its first unit
        with pytest.raises(SystemExit) as stopped:
            evaluate(config, output)
    assert stopped.value.code == 143 and not (output / "results.json").exists()
    with counted_work() as calls:
        with pytest.raises(FileExistsError) as refused:
            evaluate(config, output, "--model.init_args.seed", 5, "--data.init_args.seed", 3)
    assert calls[0] == 0
    assert "model.init_args.seed: 0 -> 5" in str(refused.value)
    assert "data.init_args.seed: 0 -> 3" in str(refused.value)
    evaluate(config, output, "--trainer.enable_progress_bar", "true")  # no effect on numbers
    with pytest.raises(FileExistsError, match="earlier run, finished"):
        evaluate(config, output)


def test_a_figure_that_cannot_be_written_keeps_the_results(config, tmp_path, monkeypatch, capsys):
    def no_space(path: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("mixup_robust.evaluation.defense.module.draw_all", no_space)
    records = evaluate(config, tmp_path / "out")
    captured = capsys.readouterr()
    assert "a figure could not be written" in captured.err and "No space left" in captured.err
    assert "Accuracy (%)" in captured.out  # the table is printed
    assert len(records) == 3 * 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")) == [
        "config.yaml", "results.csv", "results.json", "samples-rank0.sqlite", "trials.csv",
    ]  # fmt: skip

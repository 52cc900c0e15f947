"""Evaluations killed at random moments resume to the results of an uninterrupted run.

Each evaluation (several batches; a sweep with trials; a one-batch audit) runs once without
interruption, then again in a subprocess that SIGKILLs itself at a random defense call (the
moment is drawn from a seeded generator, so it is the same on every run), then once more with
the same command. The rerun must skip every unit the killed run committed (its defense calls
are exactly the uninterrupted run's minus the killed run's at its last commit), store each
sample's records exactly once, and end with the uninterrupted run's results. SIGTERM and
SLURM's warning signal during the one-batch audit stop it between rungs with exit status 143
and its finished rungs kept.
"""

import json
import os
import random
import sqlite3
from pathlib import Path

import pytest
import yaml

from tests.helpers.cli import run_cli
from tests.helpers.evaluations import evaluation_config
from tests.helpers.kills import counted_work, run_killed

pytestmark = pytest.mark.slow

RANDOM = random.Random(19)
ROWS = (
    "SELECT unit, slot, sample, trial, defense, attack, label, correct, prediction, confidence, "
    "detection, bare_correct, value FROM samples ORDER BY unit, defense, attack, slot"
)


def audit_config(tmp_path: Path, checkpoint: Path) -> Path:
    """A one-batch audit: none and MI-OL, an oblivious and an adaptive rung, 2 trials."""

    def attack(kind: str, **init_args) -> dict:
        return {"class_path": f"mixup_robust.attacks.{kind}", "init_args": init_args}

    mi_ol = {"class_path": "mixup_robust.defenses.MixupInference",
             "init_args": {"partner_label": "other", "n_executions": 5}}  # fmt: skip
    config = {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "devices": 1, "enable_progress_bar": False},
        "model": {
            "class_path": "mixup_robust.evaluation.DefenseAudit",
            "init_args": {
                "checkpoint": str(checkpoint), "defenses": [mi_ol], "trials": 2,
                "full_ladder_fraction": 0.5,
                "rungs": [attack("PGD", eps="32/255", step_size="8/255", steps=3),
                          attack("EOTPGD", eps="32/255", step_size="8/255", steps=3,
                                 n_samples=2)],
                "unbounded": attack("EOTPGD", eps=1.0, step_size=0.1, steps=3, n_samples=2,
                                    random_start=False, name="EOT-PGD-3 (eps 1)"),
            },
        },
        "data": {"class_path": "mixup_robust.data.DigitsDataModule",
                 "init_args": {"eval_batch_size": 30, "test_subset_size": 30,
                               "pool_size_per_class": 20}},
    }  # fmt: skip
    path = tmp_path / "audit.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def without_timings(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if "seconds" not in k} for r in records]


def stored_rows(directory: Path) -> list[tuple]:
    (path,) = directory.glob("samples-*.sqlite")
    with sqlite3.connect(path) as connection:
        return connection.execute(ROWS).fetchall()


def straight_run(tmp_path: Path, config: Path) -> tuple[int, list[dict], list[tuple]]:
    """Defense calls, results and stored rows of an uninterrupted run."""
    output = tmp_path / "straight"
    with counted_work() as calls:
        run_cli("test", "--config", config, "--model.init_args.output_dir", output,
                "--trainer.default_root_dir", tmp_path / "straight-logs")  # fmt: skip
    return calls[0], json.loads((output / "results.json").read_text()), stored_rows(output)


def kill_and_resume(
    tmp_path: Path, config: Path, signum: str = "SIGKILL", env: dict | None = None
) -> str:
    """Kills a run at a random defense call, resumes it, checks it; returns the killed stderr."""
    total, expected, rows = straight_run(tmp_path, config)
    kill_at = RANDOM.randrange(2, total)
    output, ledger = tmp_path / "out", tmp_path / "ledger"
    args = ("test", "--config", config, "--model.init_args.output_dir", output,
            "--trainer.default_root_dir", tmp_path / "logs")  # fmt: skip
    killed = run_killed(kill_at, ledger, *args, signum=signum, env=env)
    assert killed.returncode == (-9 if signum == "SIGKILL" else 143), killed.stderr[-3000:]
    assert not (output / "results.json").exists()
    finished = int(ledger.read_text()) if ledger.exists() else 0
    if signum != "SIGKILL":  # stopped after the unit in flight, and said how to resume
        assert ledger.exists() and "Resume it with the same command" in killed.stderr
        assert "--model.init_args.output_dir" in killed.stderr.split("same command")[-1]
    with counted_work() as calls:
        run_cli(*args)
    assert calls[0] == total - finished  # every finished unit skipped, nothing else
    assert without_timings(json.loads((output / "results.json").read_text())) == without_timings(
        expected
    )
    assert stored_rows(output) == rows  # each sample's records once, equal to the straight run's
    assert not (output / "run.lock").exists()
    return killed.stderr


def test_an_evaluation_of_several_batches_killed_anywhere_resumes_exactly(
    digits_checkpoint, tmp_path
):
    kill_and_resume(tmp_path, evaluation_config(tmp_path, digits_checkpoint, subset=60))


def test_a_sweep_with_trials_killed_anywhere_resumes_exactly(digits_checkpoint, tmp_path):
    sweep = {"defense": {"class_path": "mixup_robust.defenses.MixupInference",
                         "init_args": {"partner_label": "other", "n_executions": 5}},
             "parameter": "mixup_ratio", "values": [0.3, 0.6]}  # fmt: skip
    config = evaluation_config(tmp_path, digits_checkpoint, 40, sweeps=[sweep], trials=2)
    kill_and_resume(tmp_path, config)


def test_the_audit_killed_anywhere_resumes_exactly(digits_checkpoint, tmp_path):
    kill_and_resume(tmp_path, audit_config(tmp_path, digits_checkpoint))


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGUSR1"])
def test_a_signal_during_a_one_batch_audit_stops_it_with_its_work_kept(
    digits_checkpoint, tmp_path, signum
):
    log = kill_and_resume(tmp_path, audit_config(tmp_path, digits_checkpoint), signum)
    # No terminal: a line per step (trial x rung x defense) with the time left.
    steps = [line for line in log.splitlines() if line.startswith("evaluation: ")]
    assert steps and all("left" in line for line in steps)
    assert any(" on MI-OL done" in line and "trial 0: PGD-3" in line for line in steps)


SLURM = {
    "SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1", "SLURM_JOB_ID": "4242",
    "SLURM_JOB_NAME": "audit", "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0",
    "SLURM_NODELIST": "localhost",
}  # fmt: skip


def test_slurms_warning_signal_requeues_the_audit_which_resumes(digits_checkpoint, tmp_path):
    bin_dir, requeued = tmp_path / "bin", tmp_path / "requeued.txt"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {requeued}\n')
    (bin_dir / "scontrol").chmod(0o755)
    env = {**SLURM, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    log = kill_and_resume(tmp_path, audit_config(tmp_path, digits_checkpoint), "SIGUSR1", env)
    assert requeued.read_text().split() == ["requeue", "4242"]
    assert "SLURM requeues the job" in log

"""Repeated trials: K draws of every random part, mean and std per record, every trial kept."""

import csv
from pathlib import Path

import numpy as np
import pytest

from mixup_robust.evaluation import DefenseEvaluation
from mixup_robust.evaluation.trials import summarize_trials
from tests.helpers.cli import CONF, measure_digits

EVALUATE = CONF / "evaluate.yaml"


def evaluate(checkpoint: Path, output: Path, *extra) -> list[dict]:
    return measure_digits(
        EVALUATE, checkpoint, output, "--data.init_args.test_subset_size", 60, *extra
    )


@pytest.mark.slow
def test_trials_redraw_attacks_and_defenses_and_keep_every_value(digits_checkpoint, tmp_path):
    single = evaluate(digits_checkpoint, tmp_path / "one")
    records = evaluate(digits_checkpoint, tmp_path / "three", "--model.init_args.trials", 3)
    rows = list(csv.DictReader((tmp_path / "three" / "trials.csv").open()))
    assert len(rows) == 3 * len(single) and not (tmp_path / "one" / "trials.csv").exists()
    for index, record in enumerate(records):
        cells = [row for row in rows if (row["defense"], row["attack"]) == (
            record["defense"], record["attack"])]  # fmt: skip
        values = np.array([float(row["accuracy"]) for row in cells])
        assert [int(row["trial"]) for row in cells] == [0, 1, 2] and record["trials"] == 3
        assert record["accuracy"] == pytest.approx(values.mean(), abs=1e-12)
        assert record["accuracy_std"] == pytest.approx(values.std(ddof=1), abs=1e-12)
        # Trial 0 is the single-trial run, draw for draw.
        assert float(cells[0]["accuracy"]) == pytest.approx(single[index]["accuracy"], abs=1e-12)
    # MI's partners and PGD's random start are drawn anew: the trials differ somewhere.
    assert any(r["accuracy_std"] > 0 for r in records if r["defense"] == "MI-OL")
    attacked = [r for r in records if r["defense"] == "none" and r["attack"] != "clean"]
    assert any(r["accuracy_std"] > 0 for r in attacked)
    clean_bare = next(r for r in records if r["defense"] == "none" and r["attack"] == "clean")
    assert clean_bare["accuracy_std"] == 0  # nothing random in the bare classifier
    assert "auroc_std" in attacked[0]


def test_summary_is_mean_and_sample_std_per_cell():
    per_trial = [
        [{"defense": "a", "attack": "x", "accuracy": value, "n": 10, "trial": t}]
        for t, value in enumerate((0.5, 0.7, 0.6))
    ]
    (record,) = summarize_trials(per_trial)
    assert record["accuracy"] == pytest.approx(0.6) and record["accuracy_std"] == pytest.approx(0.1)
    assert record["trials"] == 3 and record["n"] == 10 and "trial" not in record


def test_trials_must_be_positive():
    with pytest.raises(ValueError, match="trials"):
        DefenseEvaluation(checkpoint="x.ckpt", trials=0)

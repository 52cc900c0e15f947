"""Repeated trials of an evaluation: K draws of every random part, reported as mean and std.

A trial re-draws everything random in the evaluation: the attacks' random starts (and
targets) and the defenses' draws (MI partners, noise, crops). Trial 0 uses exactly the
draws of a single-trial run; trial t > 0 derives every seed from (seed, t). The test points
and the classifier stay the same: the spread measures the randomness of attack and defense
(the VarMixup paper's "mean +- std over 10 trials").
"""

import contextlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from torch import nn

from mixup_robust.atomic import write_atomically
from mixup_robust.defenses import redrawn
from mixup_robust.evaluation.run_files import TRIALS_FILE, records_to_csv
from mixup_robust.seeding import Stream

SUMMARIZED_FIELDS = ("accuracy", "auroc", "ece")


def attack_keys(trial: int, *keys: int) -> tuple[int, ...]:
    """Keys of an attack's seeded generator in one trial (trial 0: the single-run keys)."""
    return keys if trial == 0 else (*keys, Stream.TRIAL, trial)


def defense_trial(
    defenses: Iterable[nn.Module], trial: int
) -> contextlib.AbstractContextManager[None]:
    """Within the block every defense (and its parts) draws with the seeds of `trial`."""
    return redrawn(defenses, Stream.TRIAL, trial)


def summarize_trials(per_trial: list[list[dict]]) -> list[dict]:
    """One record per (defense, attack): the trials' mean, with `<field>_std` beside it.

    Args:
        per_trial: the records of each trial, in the same order in every trial.

    The standard deviation is the sample one (ddof 1) over the trials; one trial gives 0.
    """
    summary = []
    for cells in zip(*per_trial, strict=True):
        record = dict(cells[0])
        record.pop("trial", None)
        for field in SUMMARIZED_FIELDS:
            if field in record:
                values = np.array([cell[field] for cell in cells], dtype=np.float64)
                record[field] = float(values.mean())
                record[f"{field}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        record["trials"] = len(cells)
        summary.append(record)
    return summary


def write_trials(directory: Path, per_trial: list[list[dict]]) -> None:
    """Every trial's records in trials.csv (one row per trial, defense and attack)."""
    rows = [record for records in per_trial for record in records]
    write_atomically(directory / TRIALS_FILE, records_to_csv(rows))

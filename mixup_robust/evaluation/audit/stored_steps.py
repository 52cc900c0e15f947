"""The audit's steps as per-sample store records, and back.

One unit of a `DefenseAudit` is one step of the ladder in one trial of one batch: step 0 is
every defense on the clean samples, step k the k-th rung, the last step the eps = 1 probe. A
step's rows say, per defense and sample it ran on, whether the defense was right (`attack`
names the rung, `clean` for step 0); its payload keeps what is not per sample (the
full-ladder samples, each defense's seconds and loss rise, the probe's counts). A resumed
run rebuilds the ladder's state from the stored steps and the results come from them.
"""

from collections.abc import Sequence

import torch

from mixup_robust.evaluation.audit.ladder_state import RungStep
from mixup_robust.evaluation.names import CLEAN
from mixup_robust.evaluation.store import SAMPLE_FIELDS, sample_rows

_FIELD = {name: number for number, name in enumerate(SAMPLE_FIELDS)}


def step_rows(
    names: list[str],
    attack: str,
    trial: int,
    labels: torch.Tensor,
    sample_index: torch.Tensor,
    correct: torch.Tensor,
    ran: torch.Tensor,
    seconds: torch.Tensor | None = None,
) -> list[tuple]:
    """Rows of one step: per defense, one per sample the step ran on.

    Args:
        names: the defenses of the trial, in order.
        attack: the rung's name, or `clean`.
        trial: the trial.
        labels: (B,) true classes.
        sample_index: (B,) positions in the test split.
        correct: (D, B) bool, right under the step.
        ran: (D, B) bool, the samples the step ran on.
        seconds: (D,) each defense's time in the step, spread over its samples.
    """
    rows = []
    for d, name in enumerate(names):
        slots = ran[d].nonzero().flatten().tolist()
        share = None if seconds is None or not slots else float(seconds[d]) / len(slots)
        rows += sample_rows(
            len(slots), slot=slots, sample=sample_index.cpu()[slots].tolist(), trial=trial,
            defense=name, attack=attack, label=labels.cpu()[slots].tolist(),
            correct=correct[d, slots].tolist(), seconds=share,
        )  # fmt: skip
    return rows


def _matrices(rows: Sequence[tuple], names: list[str], batch: int) -> tuple[torch.Tensor, ...]:
    number = {name: d for d, name in enumerate(names)}
    correct = torch.zeros(len(names), batch, dtype=torch.bool)
    ran = torch.zeros(len(names), batch, dtype=torch.bool)
    for row in rows:
        d, slot = number[row[_FIELD["defense"]]], row[_FIELD["slot"]]
        correct[d, slot] = bool(row[_FIELD["correct"]])
        ran[d, slot] = True
    return correct, ran


def stored_clean(rows: Sequence[tuple], names: list[str], batch: int) -> torch.Tensor:
    """Step 0 from its rows: (D, B) bool, right on the clean samples."""
    return _matrices(rows, names, batch)[0]


def stored_rung(rows: Sequence[tuple], payload: dict, names: list[str], batch: int) -> RungStep:
    """A rung's step from its rows and payload (`rung_payload`)."""
    correct, attacked = _matrices(rows, names, batch)
    seconds = torch.tensor(payload["seconds"], dtype=torch.float64)
    loss = torch.tensor(payload["loss"], dtype=torch.float64).reshape(len(names), 2)
    return RungStep(correct, attacked, seconds, loss)


def rung_payload(step: RungStep) -> dict:
    """What a rung's rows do not hold: each defense's seconds and loss rise (exact in JSON)."""
    return {"seconds": step.seconds.tolist(), "loss": step.loss.tolist()}


def clean_rows(
    names: list[str], trial: int, labels: torch.Tensor, sample_index: torch.Tensor,
    clean: torch.Tensor,
) -> list[tuple]:  # fmt: skip
    """Step 0's rows: every defense on every clean sample."""
    ran = torch.ones_like(clean)
    return step_rows(names, CLEAN, trial, labels, sample_index, clean, ran)

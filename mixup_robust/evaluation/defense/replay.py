"""The defense evaluation's per-sample records, and its metrics computed from them.

One unit of a `DefenseEvaluation` is one trial of one test batch. Scoring a defense on a
batch (clean or attacked) gives one row per sample: its prediction, the probability of that
prediction, its detection score and whether the bare classifier got the same input right.
`replay_unit` feeds a finished unit's rows into the torchmetrics cells in the order the
batch was scored, so the results of a resumed (or sharded) run equal those of one
uninterrupted run.
"""

from collections import defaultdict
from collections.abc import Callable, Sequence

import torch
from torchmetrics import MetricCollection

from mixup_robust.evaluation.defense.metrics import update_cell_from_samples
from mixup_robust.evaluation.store import SAMPLE_FIELDS, sample_rows

_FIELD = {name: number for number, name in enumerate(SAMPLE_FIELDS)}


def scored_rows(
    defense: str,
    attack: str,
    trial: int,
    log_probs: torch.Tensor,
    labels: torch.Tensor,
    sample_index: torch.Tensor,
    detection: torch.Tensor,
    bare_correct: torch.Tensor,
    seconds: float,
) -> list[tuple]:
    """The rows of one defense scored on one (clean or attacked) batch.

    Args:
        defense: the defense's name.
        attack: the attack's name (`clean` for the clean batch).
        trial: the trial whose draws were used.
        log_probs: (B, C) the defense's log-probabilities.
        labels: (B,) true classes.
        sample_index: (B,) positions in the test split.
        detection: (B,) the defense's detection scores of the inputs.
        bare_correct: (B,) whether the bare classifier gets each input right.
        seconds: this scoring's share of the unit's time, per sample.
    """
    prediction = log_probs.argmax(dim=1)
    confidence = log_probs.exp().max(dim=1).values
    return sample_rows(
        len(labels), slot=list(range(len(labels))), sample=sample_index, trial=trial,
        defense=defense, attack=attack, label=labels, correct=prediction == labels,
        prediction=prediction, confidence=confidence, detection=detection,
        bare_correct=bare_correct, seconds=seconds,
    )  # fmt: skip


def replay_unit(
    rows: Sequence[tuple],
    cell: Callable[[str, str], MetricCollection],
    clean_name: str,
    num_classes: int,
    successful_only: bool,
    device: torch.device,
) -> None:
    """Adds one finished unit's rows to the metric cells, as scoring the batch did.

    Args:
        rows: the unit's rows (`scored_rows`), in their committed order.
        cell: the metrics of (defense name, attack name) in the unit's trial.
        clean_name: the attack name of the clean batch.
        num_classes: classes of the data.
        successful_only: `detection_on: successful` (see `DefenseEvaluation`).
        device: where the metrics live.
    """
    groups: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for row in rows:
        groups[(row[_FIELD["defense"]], row[_FIELD["attack"]])].append(row)
    columns = {key: _columns(group, device) for key, group in groups.items()}
    for (defense, attack), values in columns.items():
        detection = None
        if attack != clean_name:
            clean = columns[(defense, clean_name)]
            negatives = positives = torch.ones_like(values["bare_correct"])
            if successful_only:
                negatives = clean["bare_correct"]
                positives = clean["bare_correct"] & ~values["bare_correct"]
            detection = (clean["detection"][negatives], values["detection"][positives])
        update_cell_from_samples(
            cell(defense, attack), values["prediction"], values["confidence"],
            values["label"], num_classes, detection,
        )  # fmt: skip


def _columns(rows: list[tuple], device: torch.device) -> dict[str, torch.Tensor]:
    def column(name: str, dtype: torch.dtype) -> torch.Tensor:
        return torch.tensor([row[_FIELD[name]] for row in rows], dtype=dtype, device=device)

    return {
        "prediction": column("prediction", torch.int64),
        "label": column("label", torch.int64),
        "confidence": column("confidence", torch.float32),
        "detection": column("detection", torch.float32),
        "bare_correct": column("bare_correct", torch.bool),
    }

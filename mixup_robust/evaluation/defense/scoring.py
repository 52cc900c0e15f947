"""What `DefenseEvaluation` scores its defenses on, and what one scoring leaves behind."""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ScoredBatch:
    """One test batch that every defense is scored on: the clean batch or an attacked one.

    Attributes:
        images: (B, C, H, W) in [0, 1], clean or adversarial.
        labels: (B,) int64 true labels.
        sample_index: (B,) positions in the test split (keys of the defenses' draws).
        attack: 0 for the clean batch, else the attack's number (1-based, as in the metrics'
            keys).
        trial: the trial whose draws the defenses use.
    """

    images: torch.Tensor
    labels: torch.Tensor
    sample_index: torch.Tensor
    attack: int = 0
    trial: int = 0


@dataclass(frozen=True)
class DefenseScores:
    """What scoring one batch leaves for the detection AUROC of its attacked versions.

    Attributes:
        detection: per defense, its detection scores (B,) (higher: more likely adversarial);
            None for a defense that was not scored on this batch.
        correct: (B,) bool, whether the bare classifier gets each input right.
    """

    detection: list[torch.Tensor | None]
    correct: torch.Tensor

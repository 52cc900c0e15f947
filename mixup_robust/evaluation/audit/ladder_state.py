"""The state of the audit's ladder between its steps, and the counts it ends with.

`DefenseAudit` runs the ladder of one trial of one batch step by step (clean, each rung, the
eps = 1 probe) and stores each step as it ends; a resumed run rebuilds this state from the
stored steps and goes on with the next rung.
"""

from dataclasses import dataclass

import torch


@dataclass
class RungStep:
    """What one rung did to each defense's samples (D defenses, B samples).

    Attributes:
        correct: (D, B) bool, right under the rung (False where it did not run).
        attacked: (D, B) bool, the samples the rung ran on.
        seconds: (D,) float64 time spent per defense.
        loss: (D, 2) float64 the summed rise of the attack's loss and the samples it traced.
    """

    correct: torch.Tensor
    attacked: torch.Tensor
    seconds: torch.Tensor
    loss: torch.Tensor


@dataclass
class LadderState:
    """The ladder of one trial of one batch so far: right answers per step, who still stands.

    Attributes:
        correct: (D, K + 1, B) bool, right clean (step 0) and under each rung run so far.
        standing: (D, B) bool, right clean and under every rung so far.
        full: (B,) bool, the full-ladder samples.
        attacked: (D, K) how many samples each rung ran on.
        seconds: (D, K) float64 time per rung.
        loss: (D, K, 2) float64 loss rise and traced samples per rung.
    """

    correct: torch.Tensor
    standing: torch.Tensor
    full: torch.Tensor
    attacked: torch.Tensor
    seconds: torch.Tensor
    loss: torch.Tensor

    @classmethod
    def begin(
        cls, clean: torch.Tensor, full: torch.Tensor, n_rungs: int | None = None
    ) -> "LadderState":
        """The state after step 0 (the clean answers, (D, B))."""
        n_defenses, batch = clean.shape
        n_rungs = 0 if n_rungs is None else n_rungs
        state = cls(
            torch.zeros(n_defenses, 1, batch, dtype=torch.bool), clean.clone(), full.cpu(),
            torch.zeros(n_defenses, 0), torch.zeros(n_defenses, 0, dtype=torch.float64),
            torch.zeros(n_defenses, 0, 2, dtype=torch.float64),
        )  # fmt: skip
        state.correct[:, 0] = clean
        return state

    def add(self, k: int, step: RungStep) -> None:
        """Adds rung `k`'s step (rungs come in order, 1, 2, ...)."""
        if k != self.correct.shape[1]:
            raise ValueError(f"rung {k} added after {self.correct.shape[1] - 1} rungs")
        self.correct = torch.cat([self.correct, step.correct[:, None]], dim=1)
        self.attacked = torch.cat([self.attacked, step.attacked.sum(1, keepdim=True).float()], 1)
        self.seconds = torch.cat([self.seconds, step.seconds[:, None]], dim=1)
        self.loss = torch.cat([self.loss, step.loss[:, None]], dim=1)
        self.standing = self.standing & (step.correct | ~step.attacked)

    def outcomes(self, unbounded: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Per defense, the counts of `AuditCounts` and `robust` (see `Ladder.run`)."""
        outcomes = []
        for d in range(len(self.standing)):
            counts = defense_counts(
                self.correct[d], self.standing[d], self.full, self.attacked[d], self.loss[d]
            )
            counts["seconds"] = self.seconds[d]
            counts["unbounded"] = unbounded[d]
            outcomes.append(counts)
        return outcomes


def defense_counts(
    correct: torch.Tensor,
    standing: torch.Tensor,
    full: torch.Tensor,
    attacked: torch.Tensor,
    loss: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Counts of one defense: cumulative survivors, full-ladder accuracies and pairs."""
    n_steps = correct.shape[0]
    survivors = correct.clone()
    for k in range(1, n_steps):
        survivors[k] &= survivors[k - 1]
    on_full = correct[:, full].double()
    return {
        "samples": torch.tensor([correct.shape[1], int(full.sum())], dtype=torch.float64),
        "cumulative": survivors.sum(1).double(),
        "full_correct": on_full.sum(1),
        "pairs": on_full @ (1 - on_full).T,
        "attacked": attacked.double(),
        "loss": loss,
        "robust": standing,
    }

"""The audit's numbers: per defense, estimates with intervals, flags and result records."""

from dataclasses import dataclass, field

import torch

from mixup_robust.evaluation.audit.ladder import Ladder
from mixup_robust.evaluation.audit.red_flags import (
    LadderCounts,
    RedFlag,
    RedFlagThresholds,
    RungSpec,
    red_flags,
)
from mixup_robust.evaluation.audit.statistics import (
    compare_to_baseline,
    mean_and_std,
    wilson_interval,
)
from mixup_robust.evaluation.names import CLEAN

WORST_CASE = "worst case"


@dataclass
class Estimate:
    """An accuracy over trials: per-trial values, mean +- std, Wilson 95 % interval.

    The interval is that of the mean count of right answers over the samples (test-set
    sampling); the std over trials is the spread due to the defense's and attacks' randomness.
    """

    per_trial: list[float]
    total: int

    @classmethod
    def of(cls, correct: torch.Tensor, total: float) -> "Estimate":
        """Builds it from right answers per trial (`correct`) out of `total` samples each."""
        total = int(total)
        return cls([float(c) / total if total else float("nan") for c in correct], total)

    @property
    def mean(self) -> float:
        """Mean accuracy over the trials, a fraction in [0, 1]."""
        return mean_and_std(self.per_trial)[0]

    @property
    def std(self) -> float:
        """Sample standard deviation (n - 1) of the accuracy over trials; 0 for one trial."""
        return mean_and_std(self.per_trial)[1]

    @property
    def interval(self) -> tuple[float, float]:
        """Wilson 95 % interval of the mean accuracy over `total` samples; NaNs with none."""
        if not self.total:
            return float("nan"), float("nan")
        return wilson_interval(round(self.mean * self.total), self.total)

    def text(self, with_interval: bool = True) -> str:
        """'12.3 [9.1, 16.4] ± 1.2' in percent (std only over several trials)."""
        if not self.total:
            return "-"
        low, high = self.interval
        text = f"{100 * self.mean:.1f}"
        if with_interval:
            text += f" [{100 * low:.1f}, {100 * high:.1f}]"
        if len(self.per_trial) > 1:
            text += f" ± {100 * self.std:.1f}"
        return text

    def fields(self, prefix: str = "") -> dict:
        """Result-record fields, fractions in [0, 1]: mean, std and interval of the accuracy.

        Keys: `<prefix>accuracy`, `<prefix>accuracy_std`, `<prefix>ci_low`, `<prefix>ci_high`.
        """
        low, high = self.interval
        return {
            f"{prefix}accuracy": self.mean, f"{prefix}accuracy_std": self.std,
            f"{prefix}ci_low": low, f"{prefix}ci_high": high,
        }  # fmt: skip


@dataclass
class AuditSummary:
    """Everything the audit reports for one defense."""

    defense: str
    rungs: list[RungSpec]
    clean: Estimate
    own: list[Estimate]  # each rung alone, on the full-ladder samples
    cumulative: list[Estimate]  # after rungs 1..k, on all samples
    attacked: list[int]  # samples each rung crafted (summed over trials): the cost
    seconds: list[float]  # wall seconds each rung took (crafting and scoring, all trials)
    strongest: str
    versus_none: tuple[str, float]
    unbounded: Estimate | None
    flags: list[RedFlag] = field(default_factory=list)

    @property
    def worst(self) -> Estimate:
        """Accuracy after the last rung: the per-sample worst case over the ladder."""
        return self.cumulative[-1]

    @property
    def trials(self) -> int:
        """How many trials the defense was audited (one for a deterministic defense)."""
        return len(self.clean.per_trial)

    def records(self, ladder: Ladder) -> list[dict]:
        """results.json records: clean, each rung, the eps = 1 probe and the worst case."""
        base = {"defense": self.defense, "trials": self.trials}
        records = [{**base, "attack": CLEAN, "kind": CLEAN, "threat_model": "none",
                    "n": self.clean.total, **self.clean.fields()}]  # fmt: skip
        for k, attack in enumerate(ladder.rungs):
            records.append({
                **base, "attack": attack.name, "kind": self.rungs[k].kind,
                "threat_model": attack.threat_model, "n": self.own[k].total,
                **self.own[k].fields(), **self.cumulative[k + 1].fields("cumulative_"),
                "samples_attacked": self.attacked[k], "seconds": self.seconds[k],
                "flags": [str(f) for f in self.flags if f.rung == attack.name],
                **attack.describe(),
            })  # fmt: skip
        if self.unbounded is not None and ladder.unbounded is not None:
            records.append({
                **base, "attack": ladder.unbounded.name, "kind": "unbounded probe",
                "threat_model": ladder.unbounded.threat_model, "n": self.unbounded.total,
                **self.unbounded.fields(), **ladder.unbounded.describe(),
            })  # fmt: skip
        verdict, p_value = self.versus_none
        records.append({
            **base, "attack": WORST_CASE, "kind": WORST_CASE, "threat_model": "all rungs",
            "n": self.worst.total, **self.worst.fields(),
            "accuracy_per_trial": self.worst.per_trial, "strongest_rung": self.strongest,
            "versus_none": verdict, "versus_none_p": p_value,
            "red_flags": [str(flag) for flag in self.flags],
        })  # fmt: skip
        return records


def summarize(
    defense: str,
    trials: int,
    specs: list[RungSpec],
    counts: dict[str, torch.Tensor],
    thresholds: RedFlagThresholds,
    baseline: bool = False,
) -> AuditSummary:
    """Estimates, strongest rung, comparison with 'none' and red flags of one defense.

    Args:
        defense: the defense's name.
        trials: how many of the trials (rows of `counts`) the defense ran.
        specs: the ladder's rungs as the red flags see them.
        counts: the synced states of its `AuditCounts`, one row per trial.
        thresholds: when red flags fire.
        baseline: this is the bare classifier ('none'), which is not compared with itself.
    """
    c = {name: value[:trials] for name, value in counts.items()}
    n_all, n_full = c["samples"][0, 0], c["samples"][0, 1]
    n_rungs = len(specs)
    full_correct = c["full_correct"].sum(0)
    loss = c["loss"].sum(0)
    unbounded_counts = c["unbounded"].sum(0)
    ladder_counts = LadderCounts(
        full_ladder_samples=int(c["samples"][:, 1].sum()),
        correct=[int(v) for v in full_correct],
        pairs=[[int(v) for v in row] for row in c["pairs"].sum(0)],
        loss_rise=[
            (float(loss[k, 0]), int(loss[k, 1])) if loss[k, 1] else None for k in range(n_rungs)
        ],
        unbounded=(int(unbounded_counts[0]), int(unbounded_counts[1]))
        if unbounded_counts[1]
        else None,
    )
    if n_full:
        strongest = int(full_correct[1:].argmin())
    else:  # no full-ladder samples: the rung that broke the most standing samples
        strongest = int((c["cumulative"][:, :-1] - c["cumulative"][:, 1:]).sum(0).argmax())
    return AuditSummary(
        defense=defense,
        rungs=specs,
        clean=Estimate.of(c["cumulative"][:, 0], n_all),
        own=[Estimate.of(c["full_correct"][:, k], n_full) for k in range(1, n_rungs + 1)],
        cumulative=[Estimate.of(c["cumulative"][:, k], n_all) for k in range(n_rungs + 1)],
        attacked=[int(v) for v in c["attacked"].sum(0)],
        seconds=[float(v) for v in c["seconds"].sum(0)],
        strongest=specs[strongest].name,
        versus_none=("baseline", 1.0) if baseline else _versus_none(c["versus_none"]),
        unbounded=Estimate.of(c["unbounded"][:, 0], c["unbounded"][0, 1])
        if c["unbounded"][0, 1]
        else None,
        flags=red_flags(specs, ladder_counts, thresholds),
    )


def _versus_none(discordant: torch.Tensor) -> tuple[str, float]:
    """Verdict over trials: better/worse only if every trial's McNemar test says so.

    The p-value reported is the largest over trials (the claim must hold in each).
    """
    if not discordant.sum():
        return "within noise", 1.0
    verdicts = [compare_to_baseline(int(row[0]), int(row[1])) for row in discordant]
    labels = {verdict for verdict, _ in verdicts}
    verdict = labels.pop() if len(labels) == 1 else "within noise"
    return verdict, max(p for _, p in verdicts)

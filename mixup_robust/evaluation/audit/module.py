"""DefenseAudit: the strongest attack on each defense, per-sample worst case, error bars, flags.

`python cli.py test --config configs/eval/cifar10_audit.yaml` (CIFAR-10) or
`configs/quickstart/audit.yaml` (digits). See docs/audit.md.
"""

import time
from pathlib import Path

import torch
from torch import nn
from typing_extensions import override

from mixup_robust.attacks import EOTPGD, Attack, require_gradients
from mixup_robust.checkpoints.external import ExternalClassifier
from mixup_robust.defenses import Defense, NoDefense
from mixup_robust.evaluation.audit.counts import AuditCounts
from mixup_robust.evaluation.audit.ladder import Ladder
from mixup_robust.evaluation.audit.ladder_state import LadderState
from mixup_robust.evaluation.audit.red_flags import RedFlagThresholds
from mixup_robust.evaluation.audit.report import audit_markdown, draw_audit
from mixup_robust.evaluation.audit.stored_steps import (
    clean_rows,
    rung_payload,
    step_rows,
    stored_clean,
    stored_rung,
)
from mixup_robust.evaluation.audit.summary import AuditSummary, summarize
from mixup_robust.evaluation.audit.verdict import print_audit
from mixup_robust.evaluation.binding import bind_defenses
from mixup_robust.evaluation.measurement import MeasurementModule, check_images
from mixup_robust.evaluation.names import check_unique_names
from mixup_robust.evaluation.progress import AttackProgress
from mixup_robust.evaluation.store import Unit
from mixup_robust.evaluation.trials import defense_trial
from mixup_robust.seeding import Stream, keyed_uniform


def default_unbounded_probe() -> Attack:
    """EOT-PGD with eps = 1 from the clean image: any image is allowed, so it must reach ~0."""
    return EOTPGD(
        eps=1.0, step_size=0.05, steps=50, n_samples=5, random_start=False,
        name="EOT-PGD-50 (eps 1)",
    )  # fmt: skip


class DefenseAudit(MeasurementModule):
    """Runs a ladder of attacks, cheap to strong, on each defense and reports its worst case.

    A sample counts as robust only if the defense classifies it right clean and under every
    rung. Each rung attacks only samples no earlier rung broke, except on the full-ladder
    samples (a keyed `full_ladder_fraction` of the test set), where every rung runs, giving
    each rung's own accuracy and the paired comparisons of the red flags. Randomized defenses
    are audited `trials` times with independent draws (mean +- std). Every accuracy comes with
    a Wilson 95 % interval, and each defense is compared with the bare classifier by an exact
    McNemar test on the per-sample worst case.

    Args:
        checkpoint: our training checkpoint, or an `ExternalClassifier` (your own model).
        defenses: defenses to audit; 'none' is added first if absent.
        rungs: the ladder, cheap to strong; oblivious attacks are crafted against the bare
            classifier, the others against each defense.
        unbounded: the eps = 1 probe of the red flags; None: EOT-PGD-50 with eps 1.
        check_unbounded: run the eps = 1 probe at all.
        full_ladder_fraction: share of test samples on which every rung runs (1: no saving).
        trials: repetitions of the ladder with independent seeds, for randomized defenses.
        thresholds: when red flags fire (see `RedFlagThresholds`).
        plots: draw audit.png.
        num_classes: classes of the data (linked by the CLI; checked against the model).
        image_shape: (C, H, W) of the data (linked; checked against the model).
        output_dir: where results go; default: the run's log directory.
        seed: seed of the draws (None: the run's seed); trial 0 uses it as a
            DefenseEvaluation does, trial t > 0 derives its seeds from (seed, t).
        shard: `i/n`: only every n-th test batch from the i-th on (docs/evaluation-store.md).
    """

    def __init__(
        self,
        checkpoint: str | ExternalClassifier,
        rungs: list[Attack],
        defenses: list[Defense] | None = None,
        unbounded: Attack | None = None,
        check_unbounded: bool = True,
        full_ladder_fraction: float = 0.25,
        trials: int = 3,
        thresholds: RedFlagThresholds | None = None,
        plots: bool = True,
        num_classes: int | None = None,
        image_shape: tuple[int, int, int] | None = None,
        output_dir: str | None = None,
        seed: int | None = None,
        shard: str | None = None,
    ) -> None:
        super().__init__(checkpoint, num_classes, image_shape, output_dir, seed, shard)
        if not 0 <= full_ladder_fraction <= 1:
            raise ValueError(f"full_ladder_fraction={full_ladder_fraction} must lie in [0, 1].")
        if trials < 1:
            raise ValueError(f"trials={trials}; audit at least one trial.")
        defenses = list(defenses or [])
        if not any(isinstance(d, NoDefense) for d in defenses):
            defenses.insert(0, NoDefense())
        check_unique_names("defense", [d.name for d in defenses])
        check_unique_names("rung", [a.name for a in rungs])
        probe = (unbounded or default_unbounded_probe()) if check_unbounded else None
        self.ladder = Ladder(list(rungs), probe)
        self.defenses = nn.ModuleList(defenses)
        self.full_ladder_fraction = full_ladder_fraction
        self.trials = trials
        self.thresholds = thresholds or RedFlagThresholds()
        self.plots = plots
        self.summaries: list[AuditSummary] = []
        self.progress = AttackProgress()

    def trials_of(self, defense: Defense) -> int:
        """Randomized defenses get every trial; deterministic ones one."""
        return self.trials if defense.randomized else 1

    @override
    def setup(self, stage: str) -> None:
        first_setup = self.classifier is None
        super().setup(stage)
        if first_setup:
            self.counts = nn.ModuleList(
                [AuditCounts(self.trials, len(self.ladder.rungs)) for _ in self.defenses]
            )
            bind_defenses(self, self.defenses, self.trained["num_classes"])

    @override
    def on_test_start(self) -> None:
        steps = sum(
            2 + len(self.ladder.rungs) * sum(t < self.trials_of(d) for d in self.defenses)
            for t in range(self.trials)
        )
        self._steps_per_batch = steps
        self.progress.start(self.trainer, steps)

    @override
    def test_step(self, batch: tuple, batch_idx: int) -> None:
        images, labels, sample_index = batch
        check_images(images)
        if not self.in_shard(batch_idx):  # another shard's batch
            self.progress.skip(self._steps_per_batch)
            return
        require_gradients("DefenseAudit")
        full = keyed_uniform(self.seed, sample_index, Stream.FULL_LADDER)
        full = (full < self.full_ladder_fraction).cpu()
        for trial in range(self.trials):
            members = self._members(trial)
            if not members:
                break
            with defense_trial(members, trial):
                self._run_trial(batch_idx, trial, members, images, labels, sample_index, full)

    def _members(self, trial: int) -> list[Defense]:
        return [d for d in self.defenses if trial < self.trials_of(d)]

    def _unit(self, batch_idx: int, first: int, trial: int, step: int) -> tuple[str, int]:
        """The store's name of one step of the ladder, and its order within the batch."""
        steps = len(self.ladder.rungs) + 2
        return f"batch {batch_idx} (sample {first}) trial {trial} step {step}", trial * steps + step

    def _run_trial(
        self, batch_idx: int, trial: int, members: list[Defense], images: torch.Tensor,
        labels: torch.Tensor, sample_index: torch.Tensor, full: torch.Tensor,
    ) -> None:  # fmt: skip
        """The ladder's steps of one trial, each stored as it ends; finished ones are read back.

        A stop signal is honoured after every step (`commit_unit`), so a one-batch audit
        stops between rungs with every finished rung kept.
        """
        names, first, size = [d.name for d in members], int(sample_index[0]), len(labels)
        unit, part = self._unit(batch_idx, first, trial, 0)
        if self.unit_done(unit):
            clean = stored_clean(self.unit_rows(unit), names, size)
            self.progress.skip(1)
        else:
            started = time.perf_counter()
            clean = self.ladder.clean(members, images, labels, sample_index)
            rows = clean_rows(names, trial, labels, sample_index, clean)
            self.commit_unit(unit, batch_idx, part, rows, {"full": full.tolist()}, started)
            self.progress.advance(f"trial {trial}: clean")
        state = LadderState.begin(clean, full)
        for k, attack in enumerate(self.ladder.rungs, start=1):
            unit, part = self._unit(batch_idx, first, trial, k)
            if self.unit_done(unit):
                step = stored_rung(self.unit_rows(unit), self._payload(unit), names, size)
                self.progress.skip(len(members))
            else:
                started = time.perf_counter()
                step = self.ladder.rung(
                    k, self.classifier, members, images, labels, sample_index, state, self.seed,
                    trial, lambda name, rung=attack.name: self.progress.advance(
                        f"trial {trial}: {rung} on {name}"),
                )  # fmt: skip
                rows = step_rows(
                    names, attack.name, trial, labels, sample_index, step.correct,
                    step.attacked, step.seconds,
                )  # fmt: skip
                self.commit_unit(unit, batch_idx, part, rows, rung_payload(step), started)
            state.add(k, step)
        unit, part = self._unit(batch_idx, first, trial, len(self.ladder.rungs) + 1)
        if self.unit_done(unit):
            self.progress.skip(1)
            return
        started = time.perf_counter()
        unbounded = self.ladder.probe(
            self.classifier, members, images, labels, sample_index, full, self.seed, trial
        )
        self.commit_unit(unit, batch_idx, part, [], {"unbounded": unbounded.tolist()}, started)
        self.progress.advance(f"trial {trial}: eps = 1 probe")

    def _payload(self, name: str) -> dict:
        return next(unit.payload for unit in self.finished_units() if unit.name == name)

    def _replay(self) -> None:
        """Adds every stored trial of every batch to the counts, in the run's order."""
        steps = len(self.ladder.rungs) + 2
        trials: dict[tuple[int, int], list[Unit]] = {}
        for unit in self.finished_units():
            trials.setdefault((unit.batch, unit.part // steps), []).append(unit)
        none_robust = None
        for (_, trial), trial_units in trials.items():
            if len(trial_units) != steps:
                raise RuntimeError(
                    f"The store holds {len(trial_units)} of {steps} steps of a trial."
                )
            members = self._members(trial)
            names = [d.name for d in members]
            full = torch.tensor(trial_units[0].payload["full"], dtype=torch.bool)
            size = len(full)
            state = LadderState.begin(
                stored_clean(self.unit_rows(trial_units[0].name), names, size), full
            )
            for k, unit in enumerate(trial_units[1:-1], start=1):
                rows = self.unit_rows(unit.name)
                state.add(k, stored_rung(rows, unit.payload, names, size))
            unbounded = torch.tensor(trial_units[-1].payload["unbounded"], dtype=torch.float64)
            outcomes = state.outcomes(unbounded)
            robust = [counts.pop("robust") for counts in outcomes]
            for defense, standing in zip(members, robust, strict=True):
                if isinstance(defense, NoDefense):
                    none_robust = standing  # deterministic: its one trial serves every trial
            for defense, counts, standing in zip(members, outcomes, robust, strict=True):
                counts["versus_none"] = torch.stack(
                    [(standing & ~none_robust).sum(), (none_robust & ~standing).sum()]
                ).double()
                self.counts[self._number(defense)].update(trial, counts)

    def _number(self, defense: Defense) -> int:
        return next(i for i, member in enumerate(self.defenses) if member is defense)

    @override
    def on_test_epoch_end(self) -> None:
        self.progress.stop()
        if not self.ready_to_report():  # a shard, while others are unfinished
            return
        self._replay()
        self.summaries = [
            summarize(defense.name, self.trials_of(defense), self.ladder.specs,
                      counts.totals(), self.thresholds, isinstance(defense, NoDefense))
            for defense, counts in zip(self.defenses, self.counts, strict=True)
        ]  # fmt: skip
        for counts in self.counts:
            counts.reset()
        self.results = [record for s in self.summaries for record in s.records(self.ladder)]
        for record in self.results:
            record["checkpoint"] = str(self.checkpoint)
        self.report(self.results)

    @override
    def show(self, records: list[dict]) -> None:
        print_audit(self.summaries, report=self.results_dir / "audit.md")

    def write_extra(self, directory: Path) -> None:
        """audit.md, the paste-ready report, beside the results."""
        settings = {"full_ladder_fraction": self.full_ladder_fraction, "trials": self.trials,
                    "seed": self.seed, "thresholds": self.thresholds,
                    "model": str(self.checkpoint)}  # fmt: skip
        (directory / "audit.md").write_text(audit_markdown(self.summaries, self.ladder, settings))

    @override
    def draw(self, directory: Path) -> None:
        if self.plots:
            draw_audit(self.summaries, directory / "audit.png", model=str(self.checkpoint))

"""The defense-evaluation LightningModule: every defense under every attack, in `test`."""

import time
from dataclasses import replace
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MetricCollection
from typing_extensions import override

from mixup_robust.attacks import Attack, require_gradients
from mixup_robust.checkpoints.external import ExternalClassifier
from mixup_robust.defenses import Defense, NoDefense
from mixup_robust.evaluation.binding import bind_defenses
from mixup_robust.evaluation.defense.figures import draw_all
from mixup_robust.evaluation.defense.metrics import cell_metrics, detection_scores
from mixup_robust.evaluation.defense.replay import replay_unit, scored_rows
from mixup_robust.evaluation.defense.scoring import DefenseScores, ScoredBatch
from mixup_robust.evaluation.defense.sweep import ParameterSweep
from mixup_robust.evaluation.defense.tables import print_table
from mixup_robust.evaluation.measurement import MeasurementModule, check_images
from mixup_robust.evaluation.names import CLEAN, check_unique_names
from mixup_robust.evaluation.predictions import prediction_columns
from mixup_robust.evaluation.progress import AttackProgress
from mixup_robust.evaluation.trials import (
    attack_keys,
    defense_trial,
    summarize_trials,
    write_trials,
)
from mixup_robust.seeding import seeded_torch_rng


class DefenseEvaluation(MeasurementModule):
    """Scores a trained classifier with inference-time defenses under attacks.

    Each oblivious attack is crafted once per batch against the bare classifier and every
    defense is scored on that same adversarial batch. Each adaptive attack is crafted against
    every defense in turn and scored on that defense only, with scoring draws independent of
    the draws the attack saw. Accuracies are torchmetrics sum states,
    synced over ranks, so under DDP each test sample counts exactly once.

    Args:
        checkpoint: training checkpoint of the classifier (`<run>/checkpoints/last.ckpt`), or
            an `ExternalClassifier` (bring your own model).
        defenses: defenses to score; 'none' (the bare classifier) is added first if absent.
        attacks: attacks to craft; clean accuracy is always reported.
        sweeps: defenses scored at every value of one parameter (e.g. MI-OL's mixup_ratio).
        plots: draw tradeoff.png (and accuracy_vs_parameter.png for sweeps) from the results.
        detection_on: which inputs the detection AUROC compares: 'all' (every clean test point
            and its adversarial counterpart, the MI paper's Figure 3a) or 'successful' (clean
            inputs classified right vs. adversarial inputs that fool the bare classifier).
        num_classes: classes of the data (linked by the CLI; checked against the checkpoint).
        image_shape: (C, H, W) of the data (linked; checked against the checkpoint).
        output_dir: where results go; default: the run's log directory. An existing
            results.json there is an error, never overwritten.
        seed: seed of the defenses' draws and the attacks' random starts.
        trials: K, how many times every random part (attack starts and targets, defense
            draws) is drawn anew on the same test points. With K > 1 each record holds the
            mean over the trials and `<metric>_std` (sample std), and trials.csv keeps every
            trial's values (the VarMixup paper: mean +- std over 10 trials). Trial 0 is the
            single-trial run.
        shard: `i/n`: only every n-th test batch from the i-th on; the last shard to finish
            writes the results of all (see `MeasurementModule`, docs/evaluation-store.md).
    """

    def __init__(
        self,
        checkpoint: str | ExternalClassifier,
        defenses: list[Defense] | None = None,
        attacks: list[Attack] | None = None,
        sweeps: list[ParameterSweep] | None = None,
        plots: bool = True,
        detection_on: Literal["all", "successful"] = "all",
        num_classes: int | None = None,
        image_shape: tuple[int, int, int] | None = None,
        output_dir: str | None = None,
        seed: int | None = None,
        trials: int = 1,
        shard: str | None = None,
    ) -> None:
        super().__init__(checkpoint, num_classes, image_shape, output_dir, seed, shard)
        self.save_hyperparameters()
        if trials < 1:
            raise ValueError(f"trials={trials}; an evaluation needs at least one trial.")
        self.trials = trials
        defenses = list(defenses or [])
        if not any(isinstance(d, NoDefense) for d in defenses):
            defenses.insert(0, NoDefense())
        self.record_fields = [{} for _ in defenses]
        for sweep in sweeps or []:
            for defense, fields in sweep.expand():
                defenses.append(defense)
                self.record_fields.append(fields)
        self.defenses = nn.ModuleList(defenses)
        self.plots = plots
        self.detection_on = detection_on
        self.attacks = list(attacks or [])
        self.progress = AttackProgress()
        check_unique_names("defense", [d.name for d in self.defenses])
        check_unique_names("attack", [CLEAN] + [a.name for a in self.attacks])

    # ------------------------------------------------------------------ setup
    @override
    def setup(self, stage: str) -> None:
        first_setup = self.classifier is None
        super().setup(stage)  # loads and checks the classifier; refuses to overwrite results
        if first_setup:
            num_classes = self.trained["num_classes"]
            self.metrics = nn.ModuleDict(
                {self._key(d, a, t): cell_metrics(num_classes, clean=a == 0)
                 for t in range(self.trials)
                 for d in range(len(self.defenses)) for a in range(len(self.attacks) + 1)}
            )  # fmt: skip
            bind_defenses(self, self.defenses, num_classes)

    @staticmethod
    def _key(defense: int, attack: int, trial: int = 0) -> str:
        return f"defense{defense}_attack{attack}" + (f"_trial{trial}" if trial else "")

    # ------------------------------------------------------------------ test loop
    @override
    def on_test_start(self) -> None:
        self.progress.start(self.trainer, self._steps_per_trial() * self.trials)

    def _steps_per_trial(self) -> int:
        return 1 + sum(
            1 if a.threat_model == "oblivious" else len(self.defenses) for a in self.attacks
        )

    @override
    def test_step(self, batch: tuple, batch_idx: int) -> None:
        images, labels, sample_index = batch
        check_images(images)
        if not self.in_shard(batch_idx):  # another shard's batch
            self.progress.skip(self._steps_per_trial() * self.trials)
            return
        for trial in range(self.trials):
            unit = f"batch {batch_idx} (sample {int(sample_index[0])}) trial {trial}"
            if self.unit_done(unit):  # finished by the run this one resumes
                self.progress.skip(self._steps_per_trial())
                continue
            started, rows = time.perf_counter(), []
            with defense_trial(self.defenses, trial):
                self._test_trial(ScoredBatch(images, labels, sample_index, trial=trial), rows)
            self.commit_unit(unit, batch_idx, trial, rows, started=started)

    def _test_trial(self, batch: ScoredBatch, rows: list[tuple]) -> None:
        """Every defense under every attack on the clean `batch`, with its trial's draws.

        Appends the per-sample rows of every scoring to `rows`.
        """
        clean = self._score_defenses(batch, rows)
        self.progress.advance(CLEAN)
        for number, attack in enumerate(self.attacks, start=1):
            require_gradients("DefenseEvaluation")
            started = time.perf_counter()
            if attack.threat_model == "oblivious":
                adversarial = self._craft(attack, number, batch)
                attacked = replace(batch, images=adversarial, attack=number)
                self._score_defenses(attacked, rows, clean, started=started)
                self.progress.advance(attack.name)
                continue
            for defense_number, defense in enumerate(self.defenses):
                adversarial = self._craft(attack, number, batch, defense)
                attacked = replace(batch, images=adversarial, attack=number)
                self._score_defenses(attacked, rows, clean, only=defense_number, started=started)
                self.progress.advance(f"{attack.name} on {defense.name}")
                started = time.perf_counter()

    def _craft(
        self, attack: Attack, number: int, clean: ScoredBatch, defense: Defense | None = None
    ) -> torch.Tensor:
        """Attack `number` on the clean batch: against the bare classifier, or `defense`."""
        images, labels, sample_index = clean.images, clean.labels, clean.sample_index
        key = int(sample_index[0])  # seeds the random start by the batch's first sample
        keys = attack_keys(clean.trial, number, key)
        with seeded_torch_rng(self.seed, *keys, device=images.device):
            if defense is None:
                return attack(self.classifier, images, labels)
            return attack.against_defense(defense, images, labels, sample_index)

    def _score_defenses(
        self,
        batch: ScoredBatch,
        rows: list[tuple],
        clean: DefenseScores | None = None,
        only: int | None = None,
        started: float | None = None,
    ) -> DefenseScores:
        """Scores every defense (or only defense number `only`) on one batch.

        Appends one row per defense and sample to `rows` (`defense.replay.scored_rows`): the
        metrics are computed from them at the end. Returns the defenses' detection scores and
        which inputs the bare classifier gets right (what the attacked batches' detection
        AUROC compares with: see `replay_unit`).
        """
        started = time.perf_counter() if started is None else started
        scores, scored = [], []
        with torch.no_grad():
            plain = F.log_softmax(self.classifier(batch.images), dim=1)
            correct = plain.argmax(dim=1) == batch.labels
            for number, defense in enumerate(self.defenses):
                if only is not None and number != only:
                    scores.append(None)
                    continue
                log_probs = defense(batch.images, batch.sample_index)
                scores.append(detection_scores(plain, log_probs, isinstance(defense, NoDefense)))
                scored.append((defense.name, log_probs, scores[-1]))
        attack = CLEAN if batch.attack == 0 else self.attacks[batch.attack - 1].name
        share = (time.perf_counter() - started) / (len(scored) * len(batch.labels))
        for name, log_probs, detection in scored:
            rows += scored_rows(
                name, attack, batch.trial, log_probs, batch.labels, batch.sample_index,
                detection, correct, share,
            )  # fmt: skip
        return DefenseScores(scores, correct)

    def predict_step(self, batch: tuple, batch_idx: int) -> dict[str, torch.Tensor]:
        """Per clean sample: each defense's prediction and confidence (`cli.py predict`)."""
        images, labels, sample_index = batch
        check_images(images)
        columns = {"index": sample_index, "label": labels}
        with torch.no_grad():
            for defense in self.defenses:
                columns |= prediction_columns(f"{defense.name} ", defense(images, sample_index))
        return columns

    @override
    def on_test_epoch_end(self) -> None:
        self.progress.stop()
        if not self.ready_to_report():  # a shard, while others are unfinished
            return
        self._replay()
        per_trial = [self._records(trial) for trial in range(self.trials)]
        self.results = per_trial[0] if self.trials == 1 else summarize_trials(per_trial)
        for metrics in self.metrics.values():
            metrics.reset()
        self._per_trial = per_trial
        self.report(self.results)

    def _replay(self) -> None:
        """Computes the metrics from the store: every finished unit's rows, in the run's order."""
        defense_number = {d.name: n for n, d in enumerate(self.defenses)}
        attack_number = {a: n for n, a in enumerate([CLEAN, *(a.name for a in self.attacks)])}
        for unit in self.finished_units():
            trial = unit.part

            def cell(defense: str, attack: str, trial: int = trial) -> MetricCollection:
                key = self._key(defense_number[defense], attack_number[attack], trial)
                return self.metrics[key]

            replay_unit(
                self.unit_rows(unit.name), cell, CLEAN, self.trained["num_classes"],
                self.detection_on == "successful", self.device,
            )  # fmt: skip

    def _records(self, trial: int = 0) -> list[dict]:
        records = []
        for attack_number, attack in enumerate([None, *self.attacks]):
            for defense_number, defense in enumerate(self.defenses):
                key = self._key(defense_number, attack_number, trial)
                values = self.metrics[key].compute()
                extra = {k: float(values[k].item()) for k in ("auroc", "ece") if k in values}
                records.append(
                    {
                        "defense": defense.name,
                        "attack": CLEAN if attack is None else attack.name,
                        "threat_model": "none" if attack is None else attack.threat_model,
                        "n": int(values["n"].item()),
                        "accuracy": float(values["accuracy"].item()),
                        **extra,
                        **self.record_fields[defense_number],
                        **({} if attack is None else attack.describe()),
                        "checkpoint": str(self.checkpoint),
                        **({"trial": trial} if self.trials > 1 else {}),
                    }
                )
        return records

    @override
    def show(self, records: list[dict]) -> None:
        print_table(records, paired_detection=self.hparams.detection_on == "all")

    def write_extra(self, directory: Path) -> None:
        """trials.csv with every trial's records, when there are several trials."""
        if self.trials > 1:
            write_trials(directory, self._per_trial)

    @override
    def draw(self, directory: Path) -> None:
        if self.plots:
            draw_all(directory / "results.json")

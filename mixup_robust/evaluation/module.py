"""The defense-evaluation LightningModule: every defense under every attack, in `test`."""

from pathlib import Path
from typing import Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.utilities import rank_zero_only
from torch import nn

from mixup_robust.attacks import Attack
from mixup_robust.defenses import ClassPool, Defense, NoDefense
from mixup_robust.evaluation.checkpoint import load_classifier
from mixup_robust.evaluation.metrics import cell_metrics, detection_scores, update_cell
from mixup_robust.evaluation.plots import draw_all
from mixup_robust.evaluation.reports import (
    print_table,
    refuse_overwrite,
    write_atomically,
    write_results,
)
from mixup_robust.evaluation.sweep import ParameterSweep
from mixup_robust.seeding import seeded_torch_rng
from mixup_robust.training.base import require_gradients

CLEAN = "clean"


class DefenseEvaluation(L.LightningModule):
    """Scores a trained classifier with inference-time defenses under attacks.

    Each oblivious attack is crafted once per batch against the bare classifier and every
    defense is scored on that same adversarial batch. Each adaptive attack is crafted against
    every defense in turn and scored on that defense only, with scoring draws independent of
    the draws the attack saw. Accuracies are torchmetrics sum states,
    synced over ranks, so under DDP each test sample counts exactly once.

    Args:
        checkpoint: training checkpoint of the classifier (`<run>/checkpoints/last.ckpt`).
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
    """

    def __init__(
        self,
        checkpoint: str,
        defenses: list[Defense] | None = None,
        attacks: list[Attack] | None = None,
        sweeps: list[ParameterSweep] | None = None,
        plots: bool = True,
        detection_on: Literal["all", "successful"] = "all",
        num_classes: int | None = None,
        image_shape: tuple[int, int, int] | None = None,
        output_dir: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
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
        _check_unique("defense", [d.name for d in self.defenses])
        _check_unique("attack", [CLEAN] + [a.name for a in self.attacks])
        self.checkpoint = checkpoint
        self.expected = {"num_classes": num_classes, "image_shape": image_shape}
        self.output_dir = output_dir
        self.seed = seed
        self.classifier: nn.Module | None = None
        self.results: list[dict] = []

    # ------------------------------------------------------------------ setup
    def setup(self, stage: str) -> None:
        if self.classifier is None:
            self.classifier, hparams = load_classifier(self.checkpoint)
            self._check_matches_data(hparams)
            self.classifier.eval().requires_grad_(False)
            self.metrics = nn.ModuleDict(
                {self._key(d, a): cell_metrics(hparams["num_classes"], clean=a == 0)
                 for d in range(len(self.defenses)) for a in range(len(self.attacks) + 1)}
            )  # fmt: skip
            pool = self._pool(hparams["num_classes"])
            for defense in self.defenses:
                defense.bind(self.classifier, pool, self.seed)
        if stage == "test" and self.trainer.is_global_zero:
            refuse_overwrite(self.results_dir)

    def _check_matches_data(self, hparams: dict) -> None:
        for key, expected in self.expected.items():
            trained = hparams.get(key)
            if expected is not None and trained is not None and _plain(trained) != _plain(expected):
                raise ValueError(
                    f"The checkpoint {self.checkpoint} was trained with {key}={trained} but the "
                    f"data has {key}={expected}. Evaluate it on the data set it was trained on."
                )

    def _pool(self, num_classes: int) -> ClassPool | None:
        if not any(defense.needs_pool for defense in self.defenses):
            return None
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        if datamodule is None or not hasattr(datamodule, "sampling_pool"):
            raise ValueError("Defenses with a sampling pool need a mixup_robust DataModule.")
        return ClassPool(*datamodule.sampling_pool(), num_classes)

    @staticmethod
    def _key(defense: int, attack: int) -> str:
        return f"defense{defense}_attack{attack}"

    @property
    def results_dir(self) -> Path:
        if self.output_dir is not None:
            return Path(self.output_dir)
        return Path(self.trainer.log_dir or self.trainer.default_root_dir)

    # ------------------------------------------------------------------ test loop
    def test_step(self, batch: tuple, batch_idx: int) -> None:
        images, labels, sample_index = batch
        _check_images(images)
        clean = self._score_defenses(0, images, labels, sample_index)
        for number, attack in enumerate(self.attacks, start=1):
            require_gradients("DefenseEvaluation")
            if attack.threat_model == "oblivious":
                adversarial = self._craft(attack, number, images, labels, sample_index)
                self._score_defenses(number, adversarial, labels, sample_index, *clean)
                continue
            for defense_number, defense in enumerate(self.defenses):
                adversarial = self._craft(attack, number, images, labels, sample_index, defense)
                self._score_defenses(
                    number, adversarial, labels, sample_index, *clean, only=defense_number
                )

    def _craft(self, attack, number, images, labels, sample_index, defense=None):
        """One attack on one batch: against the bare classifier, or adaptively on `defense`."""
        key = int(sample_index[0])  # seeds the random start by the batch's first sample
        with seeded_torch_rng(self.seed, number, key, device=images.device):
            if defense is None:
                return attack(self.classifier, images, labels)
            return attack.against_defense(defense, images, labels, sample_index)

    def _score_defenses(
        self,
        attack: int,
        images: torch.Tensor,
        labels: torch.Tensor,
        sample_index: torch.Tensor,
        clean_scores: list[torch.Tensor] | None = None,
        clean_correct: torch.Tensor | None = None,
        only: int | None = None,
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Updates every defense's metrics on one batch.

        Returns the defenses' detection scores and which inputs the bare classifier gets right.
        Detection compares clean inputs with adversarial ones; with `detection_on:
        successful` only clean inputs the classifier gets right and adversarial inputs that
        turn a right prediction wrong take part (the usual protocol of detection papers).
        """
        scores = []
        with torch.no_grad():
            plain = F.log_softmax(self.classifier(images), dim=1)
            correct = plain.argmax(dim=1) == labels
            negatives = positives = None
            if clean_scores is not None:
                negatives, positives = torch.ones_like(correct), torch.ones_like(correct)
                if self.detection_on == "successful":
                    negatives, positives = clean_correct, clean_correct & ~correct
            for number, defense in enumerate(self.defenses):
                if only is not None and number != only:
                    scores.append(None)
                    continue
                log_probs = defense(images, sample_index)
                scores.append(detection_scores(plain, log_probs, isinstance(defense, NoDefense)))
                detection = None
                if clean_scores is not None:
                    detection = (clean_scores[number][negatives], scores[-1][positives])
                update_cell(self.metrics[self._key(number, attack)], log_probs, labels, detection)
        return scores, correct

    def on_test_epoch_end(self) -> None:
        self.results = self._records()
        for metrics in self.metrics.values():
            metrics.reset()
        self._report(self.results)

    def _records(self) -> list[dict]:
        records = []
        for attack_number, attack in enumerate([None, *self.attacks]):
            for defense_number, defense in enumerate(self.defenses):
                values = self.metrics[self._key(defense_number, attack_number)].compute()
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
                    }
                )
        return records

    @rank_zero_only
    def _report(self, records: list[dict]) -> None:
        write_results(self.results_dir, records)
        config = self._resolved_config()
        if config is not None and not (self.results_dir / "config.yaml").exists():
            write_atomically(self.results_dir / "config.yaml", config)
        if self.plots:
            draw_all(self.results_dir / "results.json")
        print_table(records)

    def _resolved_config(self) -> str | None:
        """The CLI's resolved config (None outside the CLI), to keep beside the results."""
        for callback in self.trainer.callbacks:
            if isinstance(callback, SaveConfigCallback):
                return callback.parser.dump(callback.config, skip_none=False)
        return None


def _plain(value):
    """Tuples and lists compare equal; numbers stay numbers."""
    return list(value) if isinstance(value, (list, tuple)) else value


def _check_unique(kind: str, names: list[str]) -> None:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"Two {kind}s share the name(s) {repeated}; give each a unique `name`.")


def _check_images(images: torch.Tensor) -> None:
    if images.dtype != torch.float32 or images.dim() != 4:
        raise ValueError(
            f"Expected float32 (B, C, H, W) images, got {images.dtype} {images.shape}."
        )
    if images.min() < 0 or images.max() > 1:
        raise ValueError(
            "Images must lie in [0, 1] (normalization is the classifier's first layer); "
            f"got values in [{images.min():.3f}, {images.max():.3f}]."
        )

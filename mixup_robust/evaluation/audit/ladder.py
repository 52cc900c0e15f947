"""The audit's ladder of attacks on one batch: each rung attacks only what is still standing.

A sample stays *standing* for a defense while the defense classifies it right, clean and under
every rung so far. A rung crafts adversarial examples only for standing samples (as AutoAttack
does), so the ladder costs little more than its strongest rung; the per-sample worst case is
unchanged, because a broken sample stays broken whatever later rungs do. On *full-ladder*
samples (a keyed fraction of the test set) every rung runs on every sample: they give each
rung's own accuracy and the paired comparisons of the red flags.
"""

import time
from collections.abc import Callable

import torch
from torch import nn

from mixup_robust.attacks import EOTPGD, Attack
from mixup_robust.defenses import Defense
from mixup_robust.evaluation.audit.ladder_state import LadderState, RungStep
from mixup_robust.evaluation.audit.red_flags import GRADIENT_FREE, OBLIVIOUS, WHITE_BOX, RungSpec
from mixup_robust.evaluation.trials import attack_keys
from mixup_robust.seeding import Part, seeded_torch_rng


def rung_spec(attack: Attack) -> RungSpec:
    """How the red flags see an attack: its kind and, for EOT-PGD-like ones, its strength."""
    if attack.threat_model == "oblivious":
        kind = OBLIVIOUS
    else:
        kind = WHITE_BOX if attack.uses_gradients else GRADIENT_FREE
    if isinstance(attack, EOTPGD):
        family = (type(attack).__name__, attack.eps, attack.step_size)
        return RungSpec(attack.name, kind, family, attack.steps, attack.n_samples)
    return RungSpec(attack.name, kind)


class Ladder:
    """Rungs of attacks run in order on every defense of one batch.

    Args:
        rungs: attacks from cheap to strong. Oblivious ones are crafted once per batch against
            the bare classifier (for the samples any defense still needs); the others are
            crafted against each defense in turn.
        unbounded: the eps = 1 probe run on the full-ladder samples (not part of the worst
            case), or None.
    """

    def __init__(self, rungs: list[Attack], unbounded: Attack | None) -> None:
        if not rungs:
            raise ValueError("The audit needs at least one rung (attack) in its ladder.")
        self.rungs = rungs
        self.unbounded = unbounded
        self.specs = [rung_spec(attack) for attack in rungs]

    def run(
        self,
        classifier: nn.Module,
        defenses: list[Defense],
        images: torch.Tensor,
        labels: torch.Tensor,
        sample_index: torch.Tensor,
        full: torch.Tensor,
        seed: int,
        trial: int = 0,
    ) -> list[dict[str, torch.Tensor]]:
        """One trial of the ladder on one batch; per defense, the counts of `AuditCounts`.

        Args:
            classifier: the bare classifier; oblivious rungs are crafted against it.
            defenses: the defenses of this trial, each attacked and scored separately.
            images: (B, C, H, W) clean test images in [0, 1].
            labels: (B,) true classes.
            sample_index: (B,) test-set indices of the samples (keys of the random draws).
            full: bool (B,), the full-ladder samples (every rung runs on them).
            seed: seeds the attacks' random starts (with the rung, the batch's first sample
                and, for trial > 0, the trial: `evaluation.trials.attack_keys`).
            trial: the trial number (the caller sets the defenses' draws of that trial).

        Returns:
            Per defense, a dict of count tensors and `robust`, bool (B,): standing after the
            last rung (the per-sample worst case).

        `DefenseAudit` runs the same steps one at a time (`clean`, `rung`, `probe`), storing
        each as it ends; this is their composition in one call.
        """
        state = LadderState.begin(self.clean(defenses, images, labels, sample_index), full)
        for k in range(1, len(self.rungs) + 1):
            step = self.rung(
                k, classifier, defenses, images, labels, sample_index, state, seed, trial
            )
            state.add(k, step)
        unbounded = self.probe(
            classifier, defenses, images, labels, sample_index, full, seed, trial
        )
        return state.outcomes(unbounded)

    @staticmethod
    def clean(
        defenses: list[Defense], images: torch.Tensor, labels: torch.Tensor,
        sample_index: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        """Step 0: (D, B) bool, whether each defense gets each clean sample right."""
        with torch.no_grad():
            return torch.stack(
                [(d(images, sample_index).argmax(1) == labels).cpu() for d in defenses]
            )

    def rung(
        self,
        k: int,
        classifier: nn.Module,
        defenses: list[Defense],
        images: torch.Tensor,
        labels: torch.Tensor,
        sample_index: torch.Tensor,
        state: LadderState,
        seed: int,
        trial: int = 0,
        on_defense: Callable[[str], None] | None = None,
    ) -> RungStep:
        """Rung `k` (1-based) on the samples each defense still needs (standing or full-ladder).

        `on_defense` is told the name of each defense as its part of the rung ends.
        """
        attack = self.rungs[k - 1]
        n_defenses = len(defenses)
        step = RungStep(
            torch.zeros(n_defenses, len(labels), dtype=torch.bool),
            torch.zeros(n_defenses, len(labels), dtype=torch.bool),
            torch.zeros(n_defenses, dtype=torch.float64),
            torch.zeros(n_defenses, 2, dtype=torch.float64),
        )
        needed = state.standing | state.full
        first = int(sample_index[0])
        oblivious = None
        if attack.threat_model == "oblivious" and needed.any():
            start, rows = time.perf_counter(), needed.any(0)
            with seeded_torch_rng(seed, *attack_keys(trial, k, first), device=images.device):
                crafted = attack(classifier, images[rows], labels[rows])
            oblivious = torch.zeros_like(images)
            oblivious[rows.to(images.device)] = crafted
            # One crafting serves every defense: each sample's share of the time is split
            # evenly among the defenses that need it.
            share = needed.double() / needed.sum(0).clamp_min(1)
            step.seconds += share.sum(1) / rows.sum() * (time.perf_counter() - start)
        for d, defense in enumerate(defenses):
            rows = needed[d]
            if not rows.any():
                if on_defense is not None:
                    on_defense(defense.name)  # nothing left to attack: done at once
                continue
            on, start = rows.to(images.device), time.perf_counter()
            if oblivious is not None:
                adversarial = oblivious[on]
            else:
                with seeded_torch_rng(seed, *attack_keys(trial, k, first), device=images.device):
                    with attack.traced_loss() as trace:
                        adversarial = attack.against_defense(
                            defense, images[on], labels[on], sample_index[on]
                        )
                if len(trace) > 1:
                    step.loss[d] += torch.tensor([trace[-1] - trace[0], int(rows.sum())])
            with torch.no_grad():
                right = defense(adversarial, sample_index[on]).argmax(1) == labels[on]
            step.seconds[d] += time.perf_counter() - start
            step.correct[d, rows] = right.cpu()
            step.attacked[d] = rows
            if on_defense is not None:
                on_defense(defense.name)
        return step

    def probe(
        self,
        classifier: nn.Module,
        defenses: list[Defense],
        images: torch.Tensor,
        labels: torch.Tensor,
        sample_index: torch.Tensor,
        full: torch.Tensor,
        seed: int,
        trial: int = 0,
    ) -> torch.Tensor:
        """The last step: (D, 2) right answers and samples under the eps = 1 probe."""
        keys = (seed, *attack_keys(trial, Part.UNBOUNDED_PROBE, int(sample_index[0])))
        return torch.stack(
            [self._unbounded(classifier, d, images, labels, sample_index, full.cpu(), keys)
             for d in defenses]
        )  # fmt: skip

    def _unbounded(
        self,
        classifier: nn.Module,
        defense: Defense,
        images: torch.Tensor,
        labels: torch.Tensor,
        sample_index: torch.Tensor,
        full: torch.Tensor,
        keys: tuple[int, ...],
    ) -> torch.Tensor:
        """(right answers, samples) of `defense` under the eps = 1 probe on full-ladder samples.

        `keys` seed the probe's generator (seed, then the attack keys).
        """
        if self.unbounded is None or not full.any():
            return torch.zeros(2, dtype=torch.float64)
        on = full.to(images.device)
        with seeded_torch_rng(*keys, device=images.device):
            if self.unbounded.threat_model == "oblivious":
                adversarial = self.unbounded(classifier, images[on], labels[on])
            else:
                adversarial = self.unbounded.against_defense(
                    defense, images[on], labels[on], sample_index[on]
                )
        with torch.no_grad():
            right = defense(adversarial, sample_index[on]).argmax(1) == labels[on]
        return torch.tensor([float(right.sum()), float(on.sum())], dtype=torch.float64)

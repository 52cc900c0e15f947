"""Oblivious PGD crafted once and reused for K defenses (this project) vs. crafted per defense.

Measures, on one batch of B images, the same classifier (eval mode, frozen weights) and the
same sampling pool, scoring K = 8 defenses under an oblivious L-inf PGD attack:

(a) this project's way (`DefenseEvaluation.test_step`): craft the adversarial batch ONCE
    against the bare classifier, then score each of the K defenses on it;
(b) the straightforward reference: for each defense, craft the attack again against the bare
    classifier (same settings, same seed), then score that defense on it.

An oblivious attack never sees the defense, so (b) recomputes the same adversarial batch K
times. Before timing, the script checks that with the random start seeded identically
(`torch.manual_seed(seed)` before each crafting) the K adversarial batches of (b) equal the one
of (a) bit for bit and that every defense gets the same accuracy both ways; it prints the
accuracies and exits with status 1 on a mismatch.

Labels are the bare classifier's predictions on the clean images (so the undefended clean
accuracy is 100% and the attack has something to destroy). Weights and images are random
(speed does not depend on training); the batch-norm statistics are set from the batch, so
that the random net's predictions vary from image to image and PGD flips them.

Run from the repository root:
    .venv/bin/python benchmarks/oblivious_attack_reuse.py
    .venv/bin/python benchmarks/oblivious_attack_reuse.py --batch 64
    .venv/bin/python benchmarks/oblivious_attack_reuse.py --net preact18 --batch 8 --repeats 1
"""

import argparse
import statistics
from collections.abc import Callable

import torch
from common import (
    add_common_arguments,
    build_net,
    build_pool,
    calibrate_batch_norm,
    clock,
    random_images,
    set_up,
)
from rich.console import Console
from rich.table import Table

from mixup_robust.attacks.pgd import PGD
from mixup_robust.defenses import (
    Defense,
    GaussianNoise,
    MixupInference,
    MixupInferenceCombined,
    NoDefense,
    RandomCropResize,
    RandomResizePad,
    RandomRotation,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--batch", type=int, default=16, help="B, images in the batch (default 16: see README)"
    )
    parser.add_argument("--steps", type=int, default=10, help="PGD steps")
    parser.add_argument(
        "--n-executions", type=int, default=30, help="N, executions of each randomized defense"
    )
    add_common_arguments(parser)
    return parser.parse_args()


def build_defenses(n_executions: int) -> list[Defense]:
    n = n_executions
    return [
        NoDefense(),
        MixupInference("predicted", n_executions=n),
        MixupInference("other", n_executions=n),
        MixupInferenceCombined(n_executions=n),
        GaussianNoise(n_executions=n),
        RandomRotation(n_executions=n),
        RandomResizePad(n_executions=n),
        RandomCropResize(n_executions=n),
    ]


class Runner:
    """Both ways of scoring the defenses, timing crafting and scoring separately."""

    def __init__(self, classifier, defenses, attack, images, labels, sample_index, seed, device):
        self.classifier, self.defenses, self.attack = classifier, defenses, attack
        self.images, self.labels, self.sample_index = images, labels, sample_index
        self.seed, self.device = seed, device

    def craft(self) -> torch.Tensor:
        torch.manual_seed(self.seed)  # the random start
        return self.attack(self.classifier, self.images, self.labels)

    def score(self, defense: Defense, adversarial: torch.Tensor) -> float:
        with torch.no_grad():
            predictions = defense(adversarial, self.sample_index).argmax(dim=1)
        return (predictions == self.labels).float().mean().item()

    def _clock(self, fn: Callable[[], object]) -> tuple[object, float]:
        return clock(fn, self.device)

    def once(self) -> tuple[list[float], list[torch.Tensor], float, float]:
        """(a): accuracies, [adversarial], crafting seconds, scoring seconds."""
        adversarial, craft_s = self._clock(self.craft)
        accuracies, score_s = self._clock(
            lambda: [self.score(d, adversarial) for d in self.defenses]
        )
        return accuracies, [adversarial], craft_s, score_s

    def per_defense(self) -> tuple[list[float], list[torch.Tensor], float, float]:
        """(b): accuracies, the K adversarial batches, crafting seconds, scoring seconds."""
        accuracies, batches, craft_s, score_s = [], [], 0.0, 0.0
        for defense in self.defenses:
            adversarial, seconds = self._clock(self.craft)
            craft_s += seconds
            accuracy, seconds = self._clock(lambda d=defense, x=adversarial: self.score(d, x))
            score_s += seconds
            accuracies.append(accuracy)
            batches.append(adversarial)
        return accuracies, batches, craft_s, score_s


def main() -> None:
    args = parse_args()
    device, generator = set_up(args)

    classifier = build_net(args.net).to(device)
    pool = build_pool(generator).to(device)
    images = random_images(args.batch, generator, device)
    calibrate_batch_norm(classifier, images)
    classifier.requires_grad_(False)
    sample_index = torch.arange(args.batch, device=device)
    with torch.no_grad():
        labels = classifier(images).argmax(dim=1)
    defenses = [d.bind(classifier, pool, args.seed) for d in build_defenses(args.n_executions)]
    attack = PGD(steps=args.steps, random_start=True)
    runner = Runner(classifier, defenses, attack, images, labels, sample_index, args.seed, device)
    console = Console(width=110)

    # Correctness (and warm-up): one run of each way.
    clean = [runner.score(d, images) for d in defenses]
    acc_a, (adv_a,), _, _ = runner.once()
    acc_b, batches_b, _, _ = runner.per_defense()
    same_batches = all(torch.equal(adv_a, adv) for adv in batches_b)
    max_perturbation = (adv_a - images).abs().max().item()

    # Speed: (a) and (b) interleaved per repeat, so that load drift hits both alike.
    runs_a, runs_b = [], []
    for _ in range(args.repeats):
        runs_a.append(runner.once()[2:])
        runs_b.append(runner.per_defense()[2:])

    def medians(runs: list[tuple[float, float]]) -> tuple[float, float, float]:
        return (
            statistics.median(c + s for c, s in runs),
            statistics.median(c for c, _ in runs),
            statistics.median(s for _, s in runs),
        )

    total_a, craft_a, score_a = medians(runs_a)
    total_b, craft_b, score_b = medians(runs_b)

    console.print(
        f"Oblivious {attack.name} (eps 8/255, step 2/255, random start), K={len(defenses)} "
        f"defenses, N={args.n_executions}, net={args.net}, B={args.batch}, device={device}, "
        f"threads={torch.get_num_threads()}, torch {torch.__version__}, "
        f"median of {args.repeats} after 1 warm-up"
    )
    accuracy_table = Table(title="Accuracy under the oblivious attack (labels = clean argmax)")
    accuracy_table.add_column("defense")
    accuracy_table.add_column("clean", justify="right")
    accuracy_table.add_column("(a) crafted once", justify="right")
    accuracy_table.add_column("(b) crafted per defense", justify="right")
    accuracy_table.add_column("same", justify="center")
    for defense, c, a, b in zip(defenses, clean, acc_a, acc_b, strict=True):
        accuracy_table.add_row(
            defense.name, f"{c:.1%}", f"{a:.1%}", f"{b:.1%}", "yes" if a == b else "[red]NO[/red]"
        )
    console.print(accuracy_table)

    time_table = Table(title="Scoring K defenses under one oblivious attack: seconds per batch")
    time_table.add_column("method")
    time_table.add_column("total s", justify="right")
    time_table.add_column("crafting s", justify="right")
    time_table.add_column("scoring s", justify="right")
    time_table.add_column("crafting share", justify="right")
    time_table.add_column("(b)/(a)", justify="right")
    for label, total, craft, score in (
        ("(a) craft once, score K", total_a, craft_a, score_a),
        (f"(b) craft + score, x{len(defenses)}", total_b, craft_b, score_b),
    ):
        time_table.add_row(
            label,
            f"{total:.3f}",
            f"{craft:.3f}",
            f"{score:.3f}",
            f"{craft / (craft + score):.1%}",
            f"{total / total_a:.2f}x",
        )
    console.print(time_table)

    ok = same_batches and acc_a == acc_b
    verdict = "[green]OK[/green]" if ok else "[red]MISMATCH[/red]"
    console.print(
        f"Adversarial batches of (b) equal to (a)'s bit for bit: {same_batches}; "
        f"accuracies identical: {acc_a == acc_b} {verdict}; "
        f"max |x_adv - x| = {max_perturbation:.5f} (eps = {attack.eps:.5f})"
    )
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

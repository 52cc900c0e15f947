"""The audit's ladder with skipping (each rung attacks only what is still standing) vs. every
rung on every sample, and vs. its strongest rung alone.

Measures, on one batch of B digits test images (scikit-learn's, bundled), a SmallCNN trained
in the script for `--train-steps` Adam steps (seconds; the saving depends on attacks breaking
samples, which needs a trained model), the same sampling pool and seed, the audit's
`Ladder.run` for the bare classifier and MI-OL (N = `--executions`) with the ladder oblivious
PGD-10, EOT-PGD-10 (N_A = 1), EOT-PGD-10 (N_A = 10), EOT-PGD-30 (N_A = 10) (eps 32/255,
step 8/255, the quickstart's digits budget; no random starts):

(a) skipping: no full-ladder samples (`full` all false), the audit's saving;
(b) every rung on every sample (`full` all true, i.e. `full_ladder_fraction: 1`);
(c) the strongest rung (EOT-PGD-30, N_A = 10) alone on every sample.

The worst-case accuracies of (a) and (b) must be equal (no random starts, keyed defense
draws); the script exits with status 1 if they are not.

Run from the repository root:
    .venv/bin/python benchmarks/audit_cost.py --threads 1
    .venv/bin/python benchmarks/audit_cost.py --batch 64 --repeats 1
"""

import argparse
import sys

import torch
import torch.nn.functional as F
from common import add_common_arguments, clock, set_up
from rich.console import Console
from rich.table import Table

from mixup_robust.attacks import EOTPGD, PGD
from mixup_robust.data import DigitsDataModule
from mixup_robust.defenses import ClassPool, MixupInference, NoDefense
from mixup_robust.evaluation.audit.ladder import Ladder
from mixup_robust.nets import Normalize, SmallCNN

EPS, STEP = "32/255", "8/255"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--executions", type=int, default=10, help="MI-OL's N")
    parser.add_argument("--train-steps", type=int, default=300)
    return parser.parse_args()


def trained_classifier(data: DigitsDataModule, steps: int, device: torch.device):
    """A SmallCNN trained with Adam on the digits' training split (batches of 64)."""
    images, labels = (t.to(device) for t in data.sampling_pool())
    images = images.float() / 255
    classifier = torch.nn.Sequential(Normalize([0.5], [0.25]), SmallCNN(1, 10, width=16))
    classifier = classifier.to(device)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        batch = torch.randint(0, len(labels), (64,), generator=generator).to(device)
        loss = F.cross_entropy(classifier(images[batch]), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return classifier.eval().requires_grad_(False)


def ladder_rungs() -> list:
    def eot(steps: int, n_samples: int) -> EOTPGD:
        return EOTPGD(EPS, STEP, steps, n_samples, random_start=False)

    return [PGD(EPS, STEP, 10, random_start=False), eot(10, 1), eot(10, 10), eot(30, 10)]


def main() -> int:
    args = parse_args()
    device, _ = set_up(args)
    data = DigitsDataModule(eval_batch_size=args.batch, pool_size_per_class=1000)
    data.setup("test")
    classifier = trained_classifier(data, args.train_steps, device)
    images, labels, index = next(iter(data.test_dataloader()))
    images, labels, index = images.float().to(device) / 255, labels.to(device), index.to(device)
    pool = ClassPool(*data.sampling_pool(), 10).to(device)
    defenses = [NoDefense().bind(classifier), MixupInference("other", 0.5, args.executions)]
    defenses[1].bind(classifier, pool, args.seed)
    rungs = ladder_rungs()

    def run(full_value: bool, chosen: list):
        full = torch.full((len(labels),), full_value)
        return Ladder(chosen, None).run(classifier, defenses, images, labels, index, full, 0)

    results = {}
    for label, full_value, chosen in (
        ("(a) ladder, skipping broken samples", False, rungs),
        ("(b) ladder, every rung on every sample", True, rungs),
        ("(c) strongest rung alone", True, rungs[-1:]),
    ):
        times = []
        for _ in range(args.repeats):
            outcome, seconds = clock(lambda: run(full_value, chosen), device)  # noqa: B023
            times.append(seconds)
        results[label] = (sorted(times)[len(times) // 2], outcome)
    return report(results, args, device)


def report(results: dict, args: argparse.Namespace, device: torch.device) -> int:
    reference = results["(c) strongest rung alone"][0]
    table = Table(title=f"Audit ladder cost: {args.batch} digits, none + MI-OL, {device}")
    for column in ("run", "seconds", "x strongest rung", "samples attacked", "worst case %"):
        table.add_column(column, justify="left" if column == "run" else "right")
    worst_cases = []
    for label, (seconds, outcome) in results.items():
        attacked = sum(int(o["attacked"].sum()) for o in outcome)
        worst = " / ".join(f"{100 * float(o['robust'].float().mean()):.1f}" for o in outcome)
        worst_cases.append(worst)
        table.add_row(label, f"{seconds:.2f}", f"{seconds / reference:.2f}", str(attacked), worst)
    console = Console()
    console.print(table)
    skip = results["(a) ladder, skipping broken samples"][0]
    full = results["(b) ladder, every rung on every sample"][0]
    console.print(f"every rung on every sample / skipping: {full / skip:.2f}x "
                  "(worst case: none / MI-OL)")  # fmt: skip
    if worst_cases[0] != worst_cases[1]:
        console.print("[red]The worst cases of (a) and (b) differ.[/red]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

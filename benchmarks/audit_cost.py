"""The audit's ladder with skipping (each rung attacks only what is still standing) vs. every
rung on every sample, and vs. its strongest rung alone.

Measures, on one batch of B images, the same classifier, sampling pool and seed, the audit's
`Ladder.run` for the bare classifier and MI-OL (N = `--executions`) with the ladder
oblivious PGD-10, EOT-PGD-10 (N_A = 1), EOT-PGD-10 (N_A = 10), EOT-PGD-50 (N_A = 10)
(eps 8/255, step 2/255):

(a) skipping: no full-ladder samples (`full` all false), the audit's saving;
(b) every rung on every sample (`full` all true, i.e. `full_ladder_fraction: 1`);
(c) the strongest rung (EOT-PGD-50, N_A = 10) alone on every sample, on MI-OL and the bare
    classifier: what the ladder should cost little more than.

The worst-case accuracies of (a) and (b) must be equal (no random starts, keyed defense draws);
the script exits with status 1 if they are not. Weights and images are random (speed does not
depend on training), batch-norm statistics calibrated on the batch; labels are the bare
classifier's predictions, so clean accuracy is 100 % for 'none'.

Run from the repository root:
    .venv/bin/python benchmarks/audit_cost.py --threads 1
    .venv/bin/python benchmarks/audit_cost.py --batch 64 --repeats 1
"""

import argparse
import sys

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

from mixup_robust.attacks import EOTPGD, PGD
from mixup_robust.defenses import MixupInference, NoDefense
from mixup_robust.evaluation.audit_ladder import Ladder
from mixup_robust.nets import Normalize

EPS, STEP = "8/255", "2/255"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--executions", type=int, default=10, help="MI-OL's N")
    return parser.parse_args()


def ladder_rungs() -> list:
    def eot(steps: int, n_samples: int) -> EOTPGD:
        return EOTPGD(EPS, STEP, steps, n_samples, random_start=False)

    return [PGD(EPS, STEP, 10, random_start=False), eot(10, 1), eot(10, 10), eot(50, 10)]


def main() -> int:
    args = parse_args()
    device, generator = set_up(args)
    net = build_net(args.net)
    images = random_images(args.batch, generator, device)
    calibrate_batch_norm(net, images.cpu())
    classifier = torch.nn.Sequential(Normalize([0.5] * 3, [0.25] * 3), net).to(device).eval()
    classifier.requires_grad_(False)
    pool = build_pool(generator).to(device)
    defenses = [NoDefense().bind(classifier), MixupInference("other", 0.5, args.executions)]
    defenses[1].bind(classifier, pool, args.seed)
    with torch.no_grad():
        labels = classifier(images).argmax(1)
    index = torch.arange(args.batch, device=device)
    rungs = ladder_rungs()

    def run(full_value: bool, chosen: list):
        full = torch.full((args.batch,), full_value)
        return Ladder(chosen, None).run(classifier, defenses, images, labels, index, full, 0)

    worst_cases, results = [], {}
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
    reference = results["(c) strongest rung alone"][0]
    table = Table(title=f"Audit ladder cost, batch {args.batch}, net {args.net}, {device}")
    for column in ("run", "seconds", "x strongest rung", "samples attacked", "worst case"):
        table.add_column(column, justify="right" if column != "run" else "left")
    for label, (seconds, outcome) in results.items():
        attacked = sum(int(o["attacked"].sum()) for o in outcome)
        worst = " / ".join(f"{100 * float(o['robust'].float().mean()):.1f}" for o in outcome)
        worst_cases.append(worst)
        table.add_row(label, f"{seconds:.2f}", f"{seconds / reference:.2f}", str(attacked), worst)
    Console().print(table)
    skip = results["(a) ladder, skipping broken samples"][0]
    full = results["(b) ladder, every rung on every sample"][0]
    Console().print(f"every rung on every sample / skipping: {full / skip:.2f}x; "
                    "worst case given as none / MI-OL (%)")  # fmt: skip
    if worst_cases[0] != worst_cases[1]:
        Console().print("[red]The worst cases of (a) and (b) differ.[/red]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""EOT-PGD with one batched B x N_A pass per step (this project) vs. torchattacks' N_A-pass loop.

Measures, on one batch of B images, the same classifier (eval mode, frozen weights), the same
sampling pool and the same seed, the same adaptive attack budget (L-inf, eps 8/255, step
2/255, `--steps` iterations, N_A = `--n-samples` executions averaged per step, no random start)
against MI-OL (Mixup Inference, partners of another class):

(a) this project's `EOTPGD(...).against_defense(defense, images, labels, sample_index)` with
    `defense = MixupInference(partner_label="other", n_executions=N_A)`: each step runs the
    B x N_A mixed images as ONE batch (`defense.execution_log_probs(x, sample_index,
    arange(N_A))` under `defense.fresh_draw(1 + step)`) and takes one backward pass;
(b) torchattacks' `EOTPGD(model, eps, alpha, steps, eot_iter=N_A, random_start=False)` with
    `model = FreshDraws(MixupInference(partner_label="other", n_executions=1))`: a Python loop
    of N_A forward/backward passes of B images per step, each call with fresh draws.

The two attacks use different random draws, so their robustness numbers (accuracy of the
defended model on each adversarial batch) are to be compared loosely. The gradients are
checked separately, for the same draws: the gradient of the mean loss over one batched call
`execution_log_probs(x, idx, arange(N_A))` must equal the average of the N_A gradients of
single-execution calls `execution_log_probs(x, idx, tensor([k]))`; the max abs difference is
printed and the script exits with status 1 if it exceeds the tolerance.

Weights and images are random (speed does not depend on training); the batch-norm statistics
are set from the batch, so that the random net's predictions vary from image to image (see
`oblivious_attack_reuse.py`). Labels are the defended model's clean predictions, so its clean
accuracy is 100% and the attack has something to destroy.

Run from the repository root:
    .venv/bin/python benchmarks/eot_batching.py
    .venv/bin/python benchmarks/eot_batching.py --threads 1
    .venv/bin/python benchmarks/eot_batching.py --net preact18 --batch 8 --repeats 1
"""

import argparse
import statistics
from collections.abc import Callable

import torch
import torchattacks
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

from mixup_robust.attacks.adaptive import EOTPGD
from mixup_robust.attacks.base import FreshDraws
from mixup_robust.defenses import MixupInference

EPS, STEP_SIZE = 8 / 255, 2 / 255
RELATIVE_TOLERANCE = 1e-4  # of the largest gradient entry (float32 sums in another order)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--batch", type=int, default=8, help="B, images in the batch (default 8: see README)"
    )
    parser.add_argument("--steps", type=int, default=10, help="PGD steps")
    parser.add_argument(
        "--n-samples", type=int, default=10, help="N_A, executions averaged per step"
    )
    add_common_arguments(parser)
    return parser.parse_args()


def input_gradient(loss_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor):
    x = x.detach().clone().requires_grad_(True)
    return torch.autograd.grad(loss_fn(x), x)[0]


def gradient_difference(defense, images, labels, sample_index, n_samples) -> tuple[float, float]:
    """Max abs difference between the batched mean gradient and the mean of N_A single ones.

    Both at the same point (the clean images) and with the same draws (attack draw 1, the
    draw of EOTPGD's first step); the loss is `EOTPGD.loss` (cross-entropy summed over the
    batch, averaged over the copies). Returns (max abs difference, max abs gradient).
    """
    device = images.device
    with torch.enable_grad(), defense.fresh_draw(1):
        batched = input_gradient(
            lambda x: EOTPGD.loss(
                defense.execution_log_probs(
                    x, sample_index, torch.arange(n_samples, device=device)
                ),
                labels,
            ),
            images,
        )
        looped = torch.zeros_like(batched)
        for k in range(n_samples):
            looped += input_gradient(
                lambda x, k=k: EOTPGD.loss(
                    defense.execution_log_probs(x, sample_index, torch.tensor([k], device=device)),
                    labels,
                ),
                images,
            )
        looped /= n_samples
    return (batched - looped).abs().max().item(), batched.abs().max().item()


def main() -> None:
    args = parse_args()
    device, generator = set_up(args)

    classifier = build_net(args.net).to(device)
    pool = build_pool(generator).to(device)
    images = random_images(args.batch, generator, device)
    calibrate_batch_norm(classifier, images)
    classifier.requires_grad_(False)
    # FreshDraws calls the defense without sample_index, which then defaults to 0..B-1.
    sample_index = torch.arange(args.batch, device=device)

    n_samples = args.n_samples
    defense = MixupInference("other", n_executions=n_samples).bind(classifier, pool, args.seed)
    defense.eval()
    single = MixupInference("other", n_executions=1).bind(classifier, pool, args.seed)
    attack = EOTPGD(
        eps=EPS, step_size=STEP_SIZE, steps=args.steps, n_samples=n_samples, random_start=False
    )
    with torch.no_grad():
        labels = defense(images, sample_index).argmax(dim=1)

    def run_a() -> torch.Tensor:
        return attack.against_defense(defense, images, labels, sample_index)

    def run_b() -> torch.Tensor:
        model = FreshDraws(single).eval()  # draws 1, 2, ... on every run, as (a)'s steps
        loop = torchattacks.EOTPGD(
            model, eps=EPS, alpha=STEP_SIZE, steps=args.steps, eot_iter=n_samples,
            random_start=False,
        )  # fmt: skip
        return loop(images, labels)

    def accuracy(x: torch.Tensor) -> float:
        with torch.no_grad():
            return (defense(x, sample_index).argmax(dim=1) == labels).float().mean().item()

    console = Console(width=110)

    # Correctness: gradient equivalence for the same draws.
    max_diff, max_grad = gradient_difference(defense, images, labels, sample_index, n_samples)
    ok = max_diff <= RELATIVE_TOLERANCE * max_grad

    # Warm-up (its outputs give the robustness numbers), then (a) and (b) interleaved.
    adv_a, _ = clock(run_a, device)
    adv_b, _ = clock(run_b, device)
    times_a, times_b = [], []
    for _ in range(args.repeats):
        times_a.append(clock(run_a, device)[1])
        times_b.append(clock(run_b, device)[1])
    seconds_a, seconds_b = statistics.median(times_a), statistics.median(times_b)

    # Images through the classifier per attack run: every step (a) predicts the B clean
    # inputs once (MI picks the partner classes from the prediction) and runs B x N_A mixed
    # images forward and backward; (b) does both N_A times with B images each.
    mixed = args.steps * args.batch * n_samples
    forwards_a = args.steps * args.batch * (1 + n_samples)
    forwards_b = args.steps * n_samples * 2 * args.batch

    console.print(
        f"EOT-PGD-{args.steps} (eps 8/255, step 2/255, no random start), N_A={n_samples}, "
        f"MI-OL, net={args.net}, B={args.batch}, device={device}, "
        f"threads={torch.get_num_threads()}, torch {torch.__version__}, torchattacks "
        f"{torchattacks.__version__}, median of {args.repeats} after 1 warm-up"
    )
    robust = Table(title="Accuracy of MI-OL (N = N_A, scoring draw 0); labels = its clean argmax")
    robust.add_column("clean", justify="right")
    robust.add_column("(a) batched EOT-PGD", justify="right")
    robust.add_column("(b) torchattacks EOTPGD", justify="right")
    robust.add_row(f"{accuracy(images):.1%}", f"{accuracy(adv_a):.1%}", f"{accuracy(adv_b):.1%}")
    console.print(robust)

    table = Table(title=f"EOT-PGD against MI-OL: seconds per batch of {args.batch}")
    table.add_column("method")
    table.add_column("seconds", justify="right")
    table.add_column("adv. images/s", justify="right")
    table.add_column("mixed images/s", justify="right")
    table.add_column("forward images", justify="right")
    table.add_column("speed-up", justify="right")
    for label, seconds, forwards in (
        (f"(a) batched: 1 pass of B x {n_samples} / step", seconds_a, forwards_a),
        (f"(b) torchattacks: {n_samples} passes of B / step", seconds_b, forwards_b),
    ):
        table.add_row(
            label,
            f"{seconds:.3f}",
            f"{args.batch / seconds:.1f}",
            f"{mixed / seconds:.0f}",
            f"{forwards}",
            f"{seconds_b / seconds:.2f}x",
        )
    console.print(table)
    verdict = "[green]OK[/green]" if ok else "[red]MISMATCH[/red]"
    console.print(
        f"Same draws: max |grad_batched - mean_k grad_k| = {max_diff:.2e} "
        f"(max |grad| = {max_grad:.2e}, tolerance {RELATIVE_TOLERANCE:.0e} of it) {verdict}; "
        f"max |x_adv - x| = {(adv_a - images).abs().max().item():.5f} (a), "
        f"{(adv_b - images).abs().max().item():.5f} (b), eps = {EPS:.5f}"
    )
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

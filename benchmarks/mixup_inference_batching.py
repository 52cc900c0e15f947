"""Batched MI-OL (this project) vs. a per-image, per-execution loop (official MI code structure).

Measures, on one batch of B images and the same classifier (eval mode, no_grad) and pool:

(a) `MixupInference(partner_label="other", n_executions=N, chunk_size=...)`: the B x N mixed
    images run through the classifier in chunks of at most `chunk_size` images;
(b) a reference with the structure of the official Mixup Inference code: a Python loop over
    the images and, per image, N single-image forward passes, each mixing x with one pool
    partner of a random other class and accumulating the softmax.

It checks that (b) run with the SAME partners as (a) gives the same output (max abs diff of the
probabilities, tolerance 1e-5), and reports the argmax agreement of (b) with its own random
partners. Weights and pool images are random: speed does not depend on training.

Run from the repository root:
    .venv/bin/python benchmarks/mixup_inference_batching.py
    .venv/bin/python benchmarks/mixup_inference_batching.py --net preact18 --batch 16
"""

import argparse

import torch
import torch.nn.functional as F
from common import (
    NUM_CLASSES,
    add_common_arguments,
    build_net,
    build_pool,
    median_seconds,
    random_images,
    set_up,
)
from rich.console import Console
from rich.table import Table
from torch import nn

from mixup_robust.defenses.mixup_inference import MixupInference
from mixup_robust.defenses.pool import ClassPool

TOLERANCE = 1e-5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=64, help="B, images in the batch")
    parser.add_argument("--n-executions", type=int, default=30, help="N, partners per image")
    parser.add_argument("--chunk-size", type=int, default=4096)
    parser.add_argument(
        "--reference-images",
        type=int,
        default=8,
        help="run and time the slow reference on the first K images only and scale its time "
        "per image (default 8; 0 = all B images)",
    )
    add_common_arguments(parser)
    return parser.parse_args()


def reference_mi(
    classifier: nn.Module,
    pool: ClassPool,
    images: torch.Tensor,
    n_executions: int,
    mixup_ratio: float,
    partners: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean softmax (B, C), one image and one execution at a time, like the official MI code.

    With `partners` (B, N) the pool positions are given; otherwise each execution draws a class
    uniformly among those other than the image's prediction, then a member of that class.
    """
    outputs = []
    for i in range(len(images)):
        x = images[i : i + 1]
        predicted = int(classifier(x).argmax(dim=1))
        total = torch.zeros(1, NUM_CLASSES, device=images.device)
        for n in range(n_executions):
            if partners is not None:
                position = int(partners[i, n])
            else:
                other = int(torch.randint(NUM_CLASSES - 1, (1,), generator=generator))
                other += int(other >= predicted)
                member = int(torch.randint(int(pool.counts[other]), (1,), generator=generator))
                position = int(pool.offsets[other]) + member
            partner = pool.images[position : position + 1].float().div(255.0)
            mixed = mixup_ratio * x + (1 - mixup_ratio) * partner
            total += F.softmax(classifier(mixed), dim=1)
        outputs.append(total / n_executions)
    return torch.cat(outputs)


def main() -> None:
    args = parse_args()
    device, generator = set_up(args)

    classifier = build_net(args.net).to(device).eval()
    pool = build_pool(generator).to(device)
    images = random_images(args.batch, generator, device)
    sample_index = torch.arange(args.batch, device=device)
    mi = MixupInference(
        partner_label="other", n_executions=args.n_executions, chunk_size=args.chunk_size
    ).bind(classifier, pool, seed=args.seed)
    ref_count = min(args.reference_images or args.batch, args.batch)
    ref_images = images[:ref_count]
    console = Console()

    with torch.no_grad():
        # Correctness: the reference with the batched run's partners, then with its own.
        batched_log_probs = mi(images, sample_index)
        predicted = classifier(images).argmax(dim=1)
        partners = mi.partners(predicted, sample_index)
        same = reference_mi(
            classifier, pool, ref_images, args.n_executions, mi.mixup_ratio, partners[:ref_count]
        )
        batched_probs = batched_log_probs[:ref_count].exp()
        max_diff = (same - batched_probs).abs().max().item()
        own_generator = torch.Generator().manual_seed(args.seed + 1)
        own = reference_mi(
            classifier, pool, ref_images, args.n_executions, mi.mixup_ratio, None, own_generator
        )
        agreement = (own.argmax(1) == batched_probs.argmax(1)).float().mean().item()

        # Speed.
        batched_s = median_seconds(lambda: mi(images, sample_index), args.repeats, device)
        ref_generator = torch.Generator().manual_seed(args.seed + 2)
        ref_s = median_seconds(
            lambda: reference_mi(
                classifier,
                pool,
                ref_images,
                args.n_executions,
                mi.mixup_ratio,
                None,
                ref_generator,
            ),
            args.repeats,
            device,
        )

    batched_rate = args.batch / batched_s
    ref_rate = ref_count / ref_s
    ref_full_s = ref_s * args.batch / ref_count

    console.print(
        f"MI-OL, N={args.n_executions}, net={args.net}, B={args.batch}, "
        f"chunk_size={args.chunk_size}, device={device}, threads={torch.get_num_threads()}, "
        f"torch {torch.__version__}, median of {args.repeats} after 1 warm-up"
    )
    if ref_count < args.batch:
        console.print(
            f"[yellow]Reference timed on the first {ref_count} of {args.batch} images; "
            f"its batch time is scaled per image.[/yellow]"
        )
    table = Table(title="Mixup Inference: batched vs. per-image loop")
    table.add_column("method")
    table.add_column(f"seconds / {args.batch} images", justify="right")
    table.add_column("images/s", justify="right")
    table.add_column("speed-up", justify="right")
    table.add_row(
        f"batched (B x N, chunks of {args.chunk_size})",
        f"{batched_s:.3f}",
        f"{batched_rate:.1f}",
        f"{batched_rate / ref_rate:.1f}x",
    )
    scaled = " (scaled)" if ref_count < args.batch else ""
    table.add_row(
        "reference (loop images x N)", f"{ref_full_s:.3f}{scaled}", f"{ref_rate:.1f}", "1.0x"
    )
    console.print(table)
    verdict = "[green]OK[/green]" if max_diff <= TOLERANCE else "[red]MISMATCH[/red]"
    console.print(
        f"Same partners: max |p_batched - p_reference| = {max_diff:.2e} "
        f"(tolerance {TOLERANCE:.0e}) {verdict}, on {ref_count} images"
    )
    console.print(
        f"Own random partners: argmax agreement with batched = {agreement:.1%} "
        f"on {ref_count} images"
    )
    if max_diff > TOLERANCE:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

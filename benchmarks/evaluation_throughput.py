"""Evaluation throughput: MI-OL / MI-PL under PGD-10 and EOT-PGD, project vs. references.

Part 1, oblivious PGD-10 (eps 8/255, step 2/255, random start) scored with MI-OL and MI-PL
(N = `--n-executions`, 30) on `--points` CIFAR-sized images, on clean and adversarial inputs:

(a) project: batches of `--batch` points; the attack crafted once per batch
    (`mixup_robust.attacks.PGD`), each defense (`MixupInference`, default chunk size from the
    device's memory unless `--chunk-size`) scoring the B x N mixed images in chunks;
(b) official structure (github.com/P2333/Mixup-Inference, `attack_resnet_mixuptest_*.py`):
    a test loader of batch size 1; per image one PGD-10 on that image, one clean and one
    adversarial forward pass, then N iterations that each mix the clean and the adversarial
    image with one pool partner (a random class other than / equal to the prediction) and
    run two single-image forward passes, accumulating the softmax. The official code runs
    MI-OL and MI-PL as separate scripts (crafting twice); here (b) crafts once for both.

Part 2, adaptive EOT-PGD-10 (N_A = `--n-samples`, 10; no random start) against MI-OL on
`--eot-points` images: (a) this project's `EOTPGD.against_defense` (one B x N_A pass per step)
vs. (b) torchattacks' `EOTPGD` looping N_A passes of B images per step (as in
`eot_batching.py`, which also checks that the gradients agree).

The slow references run on the first `--reference-points` images and their time is scaled
to all points (printed). Peak memory: on CUDA `torch.cuda.max_memory_allocated` per run
(reset before each); on CPU the process's peak resident set size so far (`ru_maxrss`, which
only grows: it bounds every run before it, it does not isolate one).

Run from the repository root:
    .venv/bin/python benchmarks/evaluation_throughput.py --threads 1 --points 64
    .venv/bin/python benchmarks/evaluation_throughput.py --net preact18   # on a GPU
"""

import argparse
import resource
import statistics

import torch
import torch.nn.functional as F
import torchattacks
from common import (
    NUM_CLASSES,
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

from mixup_robust.attacks import PGD
from mixup_robust.attacks.adaptive import EOTPGD
from mixup_robust.attacks.base import FreshDraws
from mixup_robust.defenses import MixupInference
from mixup_robust.defenses.chunking import default_chunk_size

EPS, STEP_SIZE, STEPS = 8 / 255, 2 / 255, 10
RATIOS = {"MI-OL": 0.5, "MI-PL": 0.5}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=1000, help="test points of part 1")
    parser.add_argument("--batch", type=int, default=500, help="points per batch of (a)")
    parser.add_argument("--n-executions", type=int, default=30, help="N of MI")
    parser.add_argument("--chunk-size", type=int, default=None, help="default: from memory")
    parser.add_argument("--reference-points", type=int, default=8, help="0 = all points")
    parser.add_argument("--eot-points", type=int, default=100, help="points of part 2")
    parser.add_argument("--n-samples", type=int, default=10, help="N_A of EOT-PGD")
    parser.add_argument("--skip-eot", action="store_true")
    add_common_arguments(parser)
    return parser.parse_args()


def peak_memory_mib(device: torch.device) -> tuple[float, str]:
    """(MiB, what it is): CUDA max allocated since the last reset, or the process's peak RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "CUDA max allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process peak RSS"


def peak_memory(device: torch.device) -> str:
    mib, kind = peak_memory_mib(device)
    return f"{mib:.0f} MiB ({kind})"


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def project_part1(
    classifier, pool, images, labels, args, seed: int, should_stop=None
) -> dict[str, torch.Tensor]:
    """(a): per batch, one PGD-10 and both MI defenses on clean and adversarial images.

    `should_stop` (no arguments), checked after every batch, ends the run early: the
    predictions then cover the batches done.
    """
    attack = PGD(eps=EPS, step_size=STEP_SIZE, steps=STEPS, random_start=True)
    defenses = {
        name: MixupInference(
            "other" if name == "MI-OL" else "predicted", ratio, args.n_executions,
            args.chunk_size,
        ).bind(classifier, pool, seed)
        for name, ratio in RATIOS.items()
    }  # fmt: skip
    predictions: dict[str, list[torch.Tensor]] = {}
    for start in range(0, len(images), args.batch):
        x, y = images[start : start + args.batch], labels[start : start + args.batch]
        index = torch.arange(start, start + len(x), device=x.device)
        adversarial = attack(classifier, x, y)
        with torch.no_grad():
            for name, defense in defenses.items():
                for kind, inputs in (("clean", x), ("PGD-10", adversarial)):
                    output = defense(inputs, index).argmax(1)
                    predictions.setdefault(f"{name} {kind}", []).append(output)
        if should_stop is not None and should_stop():
            break
    return {key: torch.cat(value) for key, value in predictions.items()}


def single_image_pgd(classifier, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PGD-10 on one image (batch of 1), uniform start."""
    adversarial = (x + torch.empty_like(x).uniform_(-EPS, EPS)).clamp(0, 1)
    for _ in range(STEPS):
        adversarial.requires_grad_(True)
        loss = F.cross_entropy(classifier(adversarial), y)
        (gradient,) = torch.autograd.grad(loss, adversarial)
        adversarial = adversarial.detach() + STEP_SIZE * gradient.sign()
        adversarial = torch.min(torch.max(adversarial, x - EPS), x + EPS).clamp(0, 1)
    return adversarial


def draw_partner(pool, predicted: int, other: bool, generator: torch.Generator) -> torch.Tensor:
    """One pool image of a random class other than `predicted` (OL) or of `predicted` (PL)."""
    label = predicted
    if other:
        label = int(torch.randint(NUM_CLASSES - 1, (1,), generator=generator))
        label += int(label >= predicted)
    member = int(torch.randint(int(pool.counts[label]), (1,), generator=generator))
    position = int(pool.offsets[label]) + member
    return pool.images[position : position + 1].float().div(255.0)


def official_part1(
    classifier, pool, images, labels, args, generator, should_stop=None
) -> dict[str, list[int]]:
    """(b): the per-image loop of the official MI scripts, for MI-OL and MI-PL.

    `should_stop`, checked after every image, ends the run early (predictions of the images
    done).
    """
    predictions: dict[str, list[int]] = {}
    for i in range(len(images)):
        x, y = images[i : i + 1], labels[i : i + 1]
        adversarial = single_image_pgd(classifier, x, y)
        with torch.no_grad():
            clean_pred = int(classifier(x).argmax(1))
            adv_pred = int(classifier(adversarial).argmax(1))
            for name, ratio in RATIOS.items():
                other = name == "MI-OL"
                clean_total = adv_total = 0
                for _ in range(args.n_executions):
                    partner = draw_partner(pool, clean_pred, other, generator)
                    clean_total += F.softmax(classifier(ratio * x + (1 - ratio) * partner), 1)
                    partner = draw_partner(pool, adv_pred, other, generator)
                    mixed = ratio * adversarial + (1 - ratio) * partner
                    adv_total += F.softmax(classifier(mixed), 1)
                predictions.setdefault(f"{name} clean", []).append(int(clean_total.argmax()))
                predictions.setdefault(f"{name} PGD-10", []).append(int(adv_total.argmax()))
        if should_stop is not None and should_stop():
            break
    return predictions


def eot_runs(classifier, pool, images, args, seed: int):
    """The two EOT-PGD attacks of part 2 as zero-argument callables, and the labels."""
    index = torch.arange(len(images), device=images.device)
    defense = MixupInference("other", 0.5, args.n_samples, args.chunk_size).bind(
        classifier, pool, seed
    )
    single = MixupInference("other", 0.5, 1, args.chunk_size).bind(classifier, pool, seed)
    with torch.no_grad():
        labels = defense(images, index).argmax(1)
    attack = EOTPGD(
        eps=EPS, step_size=STEP_SIZE, steps=STEPS, n_samples=args.n_samples, random_start=False
    )

    def project() -> torch.Tensor:
        return attack.against_defense(defense, images, labels, index)

    def torchattacks_loop() -> torch.Tensor:
        loop = torchattacks.EOTPGD(
            FreshDraws(single).eval(), eps=EPS, alpha=STEP_SIZE, steps=STEPS,
            eot_iter=args.n_samples, random_start=False,
        )  # fmt: skip
        return loop(images, labels)

    return project, torchattacks_loop


def timed(fn, device: torch.device, repeats: int) -> tuple[object, float, str]:
    """(last result, median seconds of `repeats` runs, peak memory of the runs)."""
    reset_peak(device)
    results, seconds = [], []
    for _ in range(repeats):
        result, elapsed = clock(fn, device)
        results.append(result)
        seconds.append(elapsed)
    return results[-1], statistics.median(seconds), peak_memory(device)


def main() -> None:
    args = parse_args()
    device, generator = set_up(args)
    console = Console(width=120)
    classifier = build_net(args.net).to(device)
    pool = build_pool(generator).to(device)
    images = random_images(args.points, generator, device)
    calibrate_batch_norm(classifier, images[: args.batch])
    classifier.requires_grad_(False)
    with torch.no_grad():
        labels = classifier(images).argmax(1)  # clean accuracy 100 %: the attack has work
    reference_count = min(args.reference_points or args.points, args.points)
    chunk = args.chunk_size or default_chunk_size(device, images.shape[1:])
    console.print(
        f"net={args.net}, points={args.points}, batch={args.batch}, N={args.n_executions}, "
        f"chunk={chunk}{'' if args.chunk_size else ' (default from memory)'}, device={device}, "
        f"threads={torch.get_num_threads()}, torch {torch.__version__}, median of "
        f"{args.repeats}; reference on {reference_count} points, scaled"
    )
    ref_generator = torch.Generator().manual_seed(args.seed + 1)
    rows = []
    ours, ours_s, ours_mem = timed(
        lambda: project_part1(classifier, pool, images, labels, args, args.seed), device,
        args.repeats,
    )  # fmt: skip
    theirs, theirs_s, theirs_mem = timed(
        lambda: official_part1(
            classifier, pool, images[:reference_count], labels[:reference_count], args,
            ref_generator,
        ),
        device, args.repeats,
    )  # fmt: skip
    scaled = theirs_s * args.points / reference_count
    rows.append(("PGD-10 + MI-OL & MI-PL", "project (batched)", ours_s, args.points, ours_mem))
    rows.append(("", "official structure (per image)", scaled, args.points, theirs_mem))
    reference_labels = labels[:reference_count]
    accuracy = {
        key: f"{(ours[key] == labels).float().mean():.1%} / "
        f"{(torch.tensor(theirs[key], device=device) == reference_labels).float().mean():.1%}"
        for key in ours
    }
    if not args.skip_eot:
        eot_images = images[: args.eot_points]
        project, loop = eot_runs(classifier, pool, eot_images, args, args.seed)
        _, eot_ours, eot_ours_mem = timed(project, device, args.repeats)
        _, eot_theirs, eot_theirs_mem = timed(loop, device, args.repeats)
        rows.append((f"EOT-PGD-10, N_A={args.n_samples}", "project", eot_ours, len(eot_images),
                     eot_ours_mem))  # fmt: skip
        rows.append(("", "torchattacks EOTPGD", eot_theirs, len(eot_images), eot_theirs_mem))
    show(console, rows, accuracy)


def show(console: Console, rows: list[tuple], accuracy: dict[str, str]) -> None:
    table = Table(title="Evaluation throughput")
    for column in ("workload", "way", "seconds", "points/s", "speed-up", "peak memory"):
        table.add_column(column, justify="left" if column in ("workload", "way") else "right")
    for number, (workload, way, seconds, points, memory) in enumerate(rows):
        baseline = rows[number + 1][2] if number % 2 == 0 else seconds
        table.add_row(
            workload, way, f"{seconds:.3f}", f"{points / seconds:.1f}",
            f"{baseline / seconds:.2f}x", memory,
        )  # fmt: skip
    console.print(table)
    console.print(
        "Accuracy on (random-weight) labels = clean argmax, project / reference (different "
        "random draws, reference on its subset; a sanity check only): "
        + ", ".join(f"{key} {value}" for key, value in accuracy.items())
    )


if __name__ == "__main__":
    main()

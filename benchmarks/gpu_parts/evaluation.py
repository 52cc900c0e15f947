"""Part `evaluation`: MI-OL and MI-PL under PGD-10 and EOT-PGD, batched vs. the references.

Calls `evaluation_throughput.py`'s functions, per net (PreActResNet18, then the small CNN):
the project's batched PGD-10 + MI-OL & MI-PL (N = 30) on `points` random CIFAR-sized images
(`project_part1`) against the official per-image structure on the first `reference_points`
(`official_part1`, its time scaled to all points), then EOT-PGD-10 (N_A = `n_samples`) on
`eot_points`: the project's `EOTPGD.against_defense` against torchattacks' `EOTPGD` loop.
Each way runs once untimed on a few points (CUDA context, kernels, allocator), then once timed
with the device synchronized around it and the peak CUDA memory reset before it. The chunk
size the defenses pick by default (`default_chunk_size`, from the free memory) is recorded
with the free memory it was picked from. A run cut by the budget records the points it did.
"""

import argparse
from dataclasses import dataclass

import torch
from common import build_net, build_pool, calibrate_batch_norm, clock, random_images
from evaluation_throughput import (
    eot_runs,
    official_part1,
    peak_memory_mib,
    project_part1,
    reset_peak,
)

from gpu_parts.runner import Budget, PartLog
from mixup_robust.defenses.chunking import default_chunk_size

WARMUP_POINTS = 4


@dataclass
class EvaluationSizes:
    """The part's workload (GPU defaults in `gpu_suite.py`, tiny ones for the dry run)."""

    nets: tuple[str, ...]
    points: int
    batch: int
    n_executions: int
    reference_points: int
    eot_points: int
    n_samples: int


class EvaluationPart:
    """The part as a callable `(budget, log)`; see the module docstring."""

    def __init__(self, sizes: EvaluationSizes, device: torch.device, seed: int) -> None:
        self.sizes, self.device, self.seed = sizes, device, seed

    def __call__(self, budget: Budget, log: PartLog) -> None:
        sizes = self.sizes
        log.info("setting", f"points={sizes.points}, batch={sizes.batch}, N={sizes.n_executions}"
                 f", reference on {sizes.reference_points} points (scaled), EOT on "
                 f"{sizes.eot_points} points, N_A={sizes.n_samples}")  # fmt: skip
        for net in sizes.nets:
            if budget.expired():
                return
            self.measure_net(net, budget, log)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()  # the next net's chunk is picked from free memory

    def timed(self, fn, log: PartLog, row: dict, scale_to: int | None = None) -> object:
        """Runs `fn` timed; logs `row` with the points done, seconds, points/s, peak memory.

        `fn` returns predictions by key (the points done) or an adversarial batch; a reference
        run on a subset also gets its seconds scaled to `scale_to` points.
        """
        reset_peak(self.device)
        result, seconds = clock(fn, self.device)
        mib, kind = peak_memory_mib(self.device)
        done = len(next(iter(result.values()))) if isinstance(result, dict) else len(result)
        row = {**row, "points": done, "seconds": seconds, "points/s": done / seconds}
        if scale_to is not None:
            row["seconds scaled to all points"] = seconds * scale_to / done if done else None
        log.row("runs", {**row, "peak MiB": mib, "memory": kind})
        self.speedups(log)
        log.recorder.save()
        return result

    def measure_net(self, net_name: str, budget: Budget, log: PartLog) -> None:
        sizes, device = self.sizes, self.device
        generator = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        classifier = build_net(net_name).to(device)
        pool = build_pool(generator).to(device)
        images = random_images(sizes.points, generator, device)
        calibrate_batch_norm(classifier, images[: sizes.batch])
        classifier.requires_grad_(False)
        with torch.no_grad():
            labels = classifier(images).argmax(1)
        free = torch.cuda.mem_get_info(device)[0] / 2**30 if device.type == "cuda" else None
        chunk = default_chunk_size(device, images.shape[1:])
        log.row("chunk", {"net": net_name, "default chunk (images)": chunk,
                          "free GiB when picked": free})  # fmt: skip
        args = argparse.Namespace(batch=sizes.batch, n_executions=sizes.n_executions,
                                  chunk_size=None, n_samples=sizes.n_samples)  # fmt: skip
        mi = {"net": net_name, "workload": "PGD-10 + MI-OL & MI-PL"}
        few = slice(0, WARMUP_POINTS)
        project_part1(classifier, pool, images[few], labels[few], args, self.seed)
        predictions = self.timed(
            lambda: project_part1(classifier, pool, images, labels, args, self.seed,
                                  budget.expired),
            log, {**mi, "way": "project (batched)"},
        )  # fmt: skip
        for key, value in predictions.items():
            accuracy = (value == labels[: len(value)]).float().mean().item()
            log.row("accuracy (random weights, labels = clean prediction: a sanity check)",
                    {"net": net_name, "scored": key, "accuracy": accuracy})  # fmt: skip
        reference = min(sizes.reference_points, sizes.points)
        ref_generator = torch.Generator().manual_seed(self.seed + 1)
        if budget.expired():
            return
        official_part1(classifier, pool, images[:1], labels[:1], args, ref_generator)
        self.timed(
            lambda: official_part1(classifier, pool, images[:reference], labels[:reference],
                                   args, ref_generator, budget.expired),
            log, {**mi, "way": "official structure (per image)"}, scale_to=sizes.points,
        )  # fmt: skip
        eot_images = images[: sizes.eot_points]
        eot = {"net": net_name, "workload": f"EOT-PGD-10 vs. MI-OL, N_A={sizes.n_samples}"}
        project, loop = eot_runs(classifier, pool, eot_images, args, self.seed)
        warm_project, warm_loop = eot_runs(classifier, pool, eot_images[few], args, self.seed)
        for way, fn, warm in (("project EOTPGD (batched)", project, warm_project),
                              ("torchattacks EOTPGD", loop, warm_loop)):  # fmt: skip
            if budget.expired():
                return
            warm()
            self.timed(fn, log, {**eot, "way": way})

    @staticmethod
    def speedups(log: PartLog) -> None:
        """Per net and workload: the project's points/s over the reference's."""
        rows = log.entry["tables"]["runs"]
        table = []
        for project in (row for row in rows if row["way"].startswith("project")):
            for other in rows:
                same = (other["net"], other["workload"]) == (project["net"], project["workload"])
                if same and other is not project and project["points"] and other["points"]:
                    table.append({"net": project["net"], "workload": project["workload"],
                                  "reference": other["way"],
                                  "speed-up": project["points/s"] / other["points/s"]})  # fmt: skip
        log.entry["tables"]["speed-up (project points/s over the reference's)"] = table

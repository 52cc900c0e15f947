"""Part `training`: images/s of ERM, mixup and IAT, the Trainer vs. the plain loop, and each option.

Calls `training_throughput.project_fit` (a `lightning.Trainer` on an `InMemoryDataModule`)
and `training_throughput.plain_fit` (`plain_training.PlainLoop`) on random CIFAR-sized uint8
data, at the fast recipes' setting (bf16-mixed, channels_last, compile, device-resident data,
the throttled progress bar; `FAST`), in this order, each run checked against the part's
budget after every step:

1. one pair (project, plain) at the fast setting for ERM, then for mixup;
2. mixup through the Trainer with one option off at a time (`OPTIONS`);
3. one pair for IAT (last of the three: its PGD-10 makes it the longest, compilation too);
4. more pairs, up to `repeats` per method, while the budget leaves room for them.

Every run's row (timed images/s; warm-up seconds, which hold torch.compile's compilation;
whole wall seconds) is written when it ends, and the summaries (`overhead`: median images/s
and the overhead of the Trainer, from the medians and as the median of back-to-back pairs;
`options`: the fast setting's images/s over that with the option off) are rewritten after
every run. `torch._dynamo.reset()` before each run: each compiles its own graphs, as a fresh
process would, and no run falls back to eager at dynamo's recompile limit.
"""

import argparse
import statistics
import time
from dataclasses import dataclass

import torch
from plain_training import RandomImages, method_net
from training_throughput import plain_fit, project_fit

from gpu_parts.runner import Budget, PartLog

FAST = {"precision": "bf16-mixed", "channels_last": True, "compile": True,
        "device_resident": True, "progress_bar": "throttled"}  # fmt: skip
OPTIONS = {
    "bf16": {"precision": "32-true"},
    "channels_last": {"channels_last": False},
    "compile": {"compile": False},
    "device_resident": {"device_resident": False},
    "throttled progress bar": {"progress_bar": "rich"},
}
OPTION_METHOD = "mixup"


@dataclass
class TrainingSizes:
    """The part's workload (GPU defaults in `gpu_suite.py`, tiny ones for the dry run)."""

    net: str
    batch: int
    warmup_steps: int
    steps: int
    iat_pgd_steps: int
    repeats: int
    compile_backend: str
    methods: tuple[str, ...] = ("erm", "mixup", "iat")


def _args(sizes: TrainingSizes, seed: int, **overrides) -> argparse.Namespace:
    """The namespace `project_fit` / `plain_fit` read, at the fast setting with `overrides`."""
    return argparse.Namespace(
        net=sizes.net, batch=sizes.batch, warmup_steps=sizes.warmup_steps, steps=sizes.steps,
        iat_pgd_steps=sizes.iat_pgd_steps, compile_backend=sizes.compile_backend, seed=seed,
        **{**FAST, **overrides},
    )  # fmt: skip


class TrainingPart:
    """The part as a callable `(budget, log)`; see the module docstring."""

    def __init__(self, sizes: TrainingSizes, device: torch.device, seed: int) -> None:
        self.sizes, self.device, self.seed = sizes, device, seed
        self.data: dict[bool, RandomImages] = {}
        self.rows: list[dict] = []

    def dataset(self, resident: bool) -> RandomImages:
        if resident not in self.data:
            size = self.sizes.batch * (self.sizes.warmup_steps + self.sizes.steps)
            data = RandomImages(size=size, batch_size=self.sizes.batch, seed=self.seed,
                                device_resident=resident)  # fmt: skip
            data.setup("fit")
            self.data[resident] = data
        return self.data[resident]

    def run(self, budget: Budget, log: PartLog, method: str, way: str, option: str) -> dict:
        """One run of `way` (project or plain) with `option` off ("-": the fast setting)."""
        args = _args(self.sizes, self.seed, **OPTIONS.get(option, {}))
        data = self.dataset(args.device_resident)
        torch.manual_seed(self.seed)
        initial = method_net(args, data).state_dict()
        torch._dynamo.reset()
        fit = project_fit if way == "project" else plain_fit
        start = time.perf_counter()
        timed = fit(args, method, data, initial, self.device, budget.expired)
        wall = time.perf_counter() - start
        row = {
            "method": method, "way": way, "option off": option, "timed steps": timed.steps,
            "images/s": self.sizes.batch * timed.steps / timed.seconds if timed.steps else None,
            "timed s": timed.seconds, "warm-up s": timed.warmup_seconds, "wall s": wall,
            "stopped by cap": timed.stopped,
        }  # fmt: skip
        self.rows.append(row)
        log.row("runs", row)
        self.summarize(log)
        return row

    def speeds(self, method: str, way: str, option: str = "-") -> list[float]:
        return [row["images/s"] for row in self.rows
                if (row["method"], row["way"], row["option off"]) == (method, way, option)
                and row["images/s"]]  # fmt: skip

    def summarize(self, log: PartLog) -> None:
        overhead = []
        for method in self.sizes.methods:
            ours, theirs = self.speeds(method, "project"), self.speeds(method, "plain")
            if not (ours and theirs):
                continue
            pairs = [b / a - 1 for a, b in zip(ours, theirs, strict=False)]
            overhead.append({
                "method": method, "project images/s": statistics.median(ours),
                "plain images/s": statistics.median(theirs),
                "overhead (medians)": statistics.median(theirs) / statistics.median(ours) - 1,
                "overhead (median of pairs)": statistics.median(pairs), "pairs": len(pairs),
            })  # fmt: skip
        log.entry["tables"]["overhead"] = overhead
        fast = self.speeds(OPTION_METHOD, "project")
        options = []
        for option in OPTIONS:
            off = self.speeds(OPTION_METHOD, "project", option)
            if fast and off:
                options.append({
                    "option": option, "method": OPTION_METHOD,
                    "images/s, all on": statistics.median(fast),
                    "images/s, this one off": statistics.median(off),
                    "speed-up from the option": statistics.median(fast) / statistics.median(off),
                })  # fmt: skip
        log.entry["tables"]["options"] = options
        log.recorder.save()

    def __call__(self, budget: Budget, log: PartLog) -> None:
        sizes = self.sizes
        log.info("setting", f"net={sizes.net}, batch={sizes.batch}, {sizes.steps} timed steps "
                 f"after {sizes.warmup_steps}, IAT PGD-{sizes.iat_pgd_steps}, fast = {FAST}, "
                 f"compile backend {sizes.compile_backend}")  # fmt: skip
        first: dict[tuple[str, str], float] = {}
        iat = [method for method in sizes.methods if method == "iat"]
        others = [method for method in sizes.methods if method != "iat"]
        for methods, options in ((others, OPTIONS), (iat, {})):
            for method in methods:
                for way in ("project", "plain"):
                    if budget.expired():
                        return
                    first[(method, way)] = self.run(budget, log, method, way, "-")["wall s"]
            for option in options:
                if budget.expired():
                    return
                self.run(budget, log, OPTION_METHOD, "project", option)
        for _ in range(1, sizes.repeats):
            for method in sizes.methods:
                pair = first[(method, "project")] + first[(method, "plain")]
                if budget.remaining() < 1.5 * pair:
                    continue  # not enough time left for a whole pair
                for way in ("project", "plain"):
                    self.run(budget, log, method, way, "-")

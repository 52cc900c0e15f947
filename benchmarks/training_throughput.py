"""Training images/s through the project's Trainer and DataModule vs. a plain PyTorch loop.

For each method (ERM, mixup, IAT) and each repeat, two runs are interleaved on the same net
(same initial weights), the same in-memory uint8 data, the same augmentation (random crop
with 4 pixels of padding and horizontal flip, `mixup_robust.data.augment`), the same
optimizer and the same precision / memory format / compile settings:

(a) project: `lightning.Trainer` fitting the method's LightningModule (`ERM`, `Mixup`,
    `InterpolatedAT`) on an `InMemoryDataModule`, with a progress bar (`--progress-bar`: the
    CLI's rich bar by default), a CSV logger and every per-step hook;
(b) plain: a `for` loop over a permutation that gathers the batch, moves it to the device,
    augments it, draws the mixup ratios and partners with torch on the device and steps SGD.

The timed window opens at the start of training step `--warmup-steps` and closes after the
last step (the device synchronized at both ends); it includes data loading. The printed
overhead is (a)'s time over (b)'s, minus one: from the two medians, and the median of the
per-pair ratios (each pair ran back to back, so it saw similar load).

Run from the repository root:
    .venv/bin/python benchmarks/training_throughput.py --threads 1
    .venv/bin/python benchmarks/training_throughput.py --methods iat --iat-pgd-steps 2
    .venv/bin/python benchmarks/training_throughput.py --net fast --batch 512 \\
        --precision bf16-mixed --channels-last --device-resident   # on a GPU
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import lightning as L
import torch
from common import set_up, synchronize
from lightning.pytorch.callbacks import Callback, RichProgressBar
from lightning.pytorch.loggers import CSVLogger
from plain_training import PlainLoop, RandomImages, build_method, method_net
from rich.console import Console
from rich.table import Table

from mixup_robust.training import ThrottledProgressBar

METHODS = ("erm", "mixup", "iat")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument(
        "--net", choices=("small", "plain", "fast", "fast-tiny", "preact18"), default="small"
    )
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per run")
    parser.add_argument("--warmup-steps", type=int, default=2, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved pairs of runs")
    parser.add_argument("--iat-pgd-steps", type=int, default=10, help="PGD steps of IAT")
    parser.add_argument(
        "--precision", choices=("32-true", "bf16-mixed"), default="32-true",
        help="Lightning precision of (a); (b) autocasts to bf16 likewise",
    )  # fmt: skip
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile the classifier")
    parser.add_argument(
        "--compile-backend", default="inductor", help="torch.compile backend (eager: tracing only)"
    )
    parser.add_argument(
        "--device-resident", action="store_true",
        help="data on the device: (a) device_resident: true, (b) indexes a device tensor",
    )  # fmt: skip
    parser.add_argument(
        "--progress-bar", choices=("rich", "throttled", "none"), default="rich",
        help="(a)'s bar: rich (as `cli.py fit` runs; reads the loss every step), throttled "
        "(ThrottledProgressBar, every 50 steps) or none",
    )  # fmt: skip
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


class StepTimer(Callback):
    """Wall time from the start of step `first` to the end of the last step.

    The device is synchronized twice only (when the window opens and when it closes): a sync
    per step would keep the host from running ahead of the GPU, the cost that the throttled
    progress bar removes. `should_stop`, checked after every step, ends the run early (the
    window then closes at that step and `steps` counts the steps it holds).
    """

    def __init__(
        self, first: int, device: torch.device, should_stop: Callable[[], bool] | None = None
    ) -> None:
        self.first, self.device, self.should_stop = first, device, should_stop
        self.fit_start = self.start = self.end = 0.0
        self.steps, self.stopped = 0, False

    def on_fit_start(self, trainer, module) -> None:
        self.fit_start = time.perf_counter()

    def on_train_batch_start(self, trainer, module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.first:
            synchronize(self.device)
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx: int) -> None:
        last = trainer.max_steps != -1 and trainer.global_step >= trainer.max_steps
        stop = not last and self.should_stop is not None and self.should_stop()
        if last or stop:
            synchronize(self.device)
            self.end = time.perf_counter()
            self.steps = max(0, trainer.global_step - self.first)
        if stop:
            self.stopped = trainer.should_stop = True

    @property
    def seconds(self) -> float:
        """Seconds of the timed steps (0 when the run stopped before the window opened)."""
        return self.end - self.start if self.steps else 0.0

    @property
    def warmup_seconds(self) -> float:
        """From the start of fitting to the window (the untimed steps: compilation, warm-up)."""
        return (self.start or self.end) - self.fit_start


def project_fit(
    args, method: str, data: RandomImages, initial: dict, device,
    should_stop: Callable[[], bool] | None = None,
) -> StepTimer:  # fmt: skip
    """Runs (a) and returns its timer (timed window, warm-up, steps, early stop)."""
    module = build_method(method, args, data)
    module.classifier.load_state_dict(initial)
    timer = StepTimer(args.warmup_steps, device, should_stop)
    bars = {"rich": [RichProgressBar(leave=True)], "throttled": [ThrottledProgressBar(leave=True)]}
    callbacks = [timer, *bars.get(args.progress_bar, [])]
    with tempfile.TemporaryDirectory() as logs:
        trainer = L.Trainer(
            accelerator=device.type, devices=1, precision=args.precision,
            max_steps=args.warmup_steps + args.steps, inference_mode=False,
            logger=CSVLogger(logs), callbacks=callbacks, enable_checkpointing=False,
            enable_progress_bar=args.progress_bar != "none", enable_model_summary=False,
            num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=logs,
        )  # fmt: skip
        trainer.fit(module, datamodule=data)
    return timer


def project_run(args, method: str, data: RandomImages, initial: dict, device) -> float:
    """Seconds of the timed steps of (a)."""
    return project_fit(args, method, data, initial, device).seconds


@dataclass
class PlainTimes:
    """Seconds of (b)'s set-up and warm-up steps and of its timed steps; steps timed."""

    warmup_seconds: float
    seconds: float
    steps: int
    stopped: bool


def plain_fit(
    args, method: str, data: RandomImages, initial: dict, device,
    should_stop: Callable[[], bool] | None = None,
) -> PlainTimes:  # fmt: skip
    """Runs (b); `should_stop`, checked after every step, ends it early."""
    begin = time.perf_counter()
    loop = PlainLoop(method, args, data, initial, device)
    for _ in range(args.warmup_steps):
        loop.step()
        if should_stop is not None and should_stop():
            return PlainTimes(time.perf_counter() - begin, 0.0, 0, True)
    synchronize(device)
    start = time.perf_counter()
    steps, stopped = 0, False
    while steps < args.steps and not stopped:
        loop.step()
        steps += 1
        stopped = steps < args.steps and should_stop is not None and should_stop()
    synchronize(device)
    return PlainTimes(start - begin, time.perf_counter() - start, steps, stopped)


def plain_run(args, method: str, data: RandomImages, initial: dict, device) -> float:
    """Seconds of the timed steps of (b)."""
    return plain_fit(args, method, data, initial, device).seconds


def main() -> None:
    args = parse_args()
    device, _ = set_up(args)
    console = Console(width=120)
    data = RandomImages(
        size=args.batch * (args.warmup_steps + args.steps), batch_size=args.batch,
        seed=args.seed, device_resident=args.device_resident,
    )  # fmt: skip
    data.setup("fit")
    initial = method_net(args, data).state_dict()
    seconds: dict[tuple[str, str], list[float]] = {}
    load = [f"{value:.2f}" for value in _load_average()]
    for _ in range(args.repeats):
        for method in args.methods:
            for way, run in (("project", project_run), ("plain", plain_run)):
                elapsed = run(args, method, data, initial, device)
                seconds.setdefault((method, way), []).append(elapsed)
    load_after = [f"{value:.2f}" for value in _load_average()]
    console.print(
        f"net={args.net}, B={args.batch}, {args.steps} timed steps after {args.warmup_steps}, "
        f"median of {args.repeats} interleaved pairs, device={device}, "
        f"threads={torch.get_num_threads()}, precision={args.precision}, "
        f"channels_last={args.channels_last}, compile={args.compile}, "
        f"device_resident={args.device_resident}, progress_bar={args.progress_bar}, "
        f"IAT PGD steps={args.iat_pgd_steps}, torch {torch.__version__}, "
        f"lightning {L.__version__}; load average (1/5/15 min) {'/'.join(load)} before, "
        f"{'/'.join(load_after)} after"
    )
    table = Table(title="Training throughput: project (Trainer + DataModule) vs. plain loop")
    columns = ("method", "project img/s", "plain img/s", "overhead (medians)",
               "overhead (median of pairs)", "project runs (s)", "plain runs (s)")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "method" else "right")
    images = args.batch * args.steps
    for method in args.methods:
        ours, theirs = seconds[(method, "project")], seconds[(method, "plain")]
        pairs = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
        table.add_row(
            method, f"{images / statistics.median(ours):.1f}",
            f"{images / statistics.median(theirs):.1f}",
            f"{statistics.median(ours) / statistics.median(theirs) - 1:+.1%}",
            f"{pairs - 1:+.1%}", " ".join(f"{value:.2f}" for value in ours),
            " ".join(f"{value:.2f}" for value in theirs),
        )  # fmt: skip
    console.print(table)


def _load_average() -> tuple[float, float, float]:
    import os

    return os.getloadavg()


if __name__ == "__main__":
    main()

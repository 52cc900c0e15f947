"""Set-up and timing helpers shared by the benchmark scripts of this folder.

The scripts run as files (`.venv/bin/python benchmarks/<script>.py` from the repository root),
so this folder is first on `sys.path` and they import this module as `common`.
"""

import argparse
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import nn

from mixup_robust.defenses.pool import ClassPool
from mixup_robust.nets.preact_resnet import PreActResNet18
from mixup_robust.nets.small_cnn import SmallCNN

NUM_CLASSES = 10
POOL_PER_CLASS = 100
IMAGE_SIZE = 32

T = TypeVar("T")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """--net, --repeats, --device, --threads and --seed, the options every benchmark takes."""
    parser.add_argument("--net", choices=("small", "preact18"), default="small")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (median reported)")
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--seed", type=int, default=0)


def set_up(args: argparse.Namespace) -> tuple[torch.device, torch.Generator]:
    """Applies --threads and --seed; returns the device and a CPU generator seeded with --seed."""
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    return torch.device(args.device), torch.Generator().manual_seed(args.seed)


def build_net(name: str) -> nn.Module:
    if name == "small":
        return SmallCNN(3, NUM_CLASSES, width=32)
    return PreActResNet18(3, NUM_CLASSES)


def build_pool(generator: torch.Generator) -> ClassPool:
    labels = torch.arange(NUM_CLASSES).repeat_interleave(POOL_PER_CLASS)
    images = torch.randint(
        0, 256, (len(labels), 3, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.uint8, generator=generator
    )
    return ClassPool(images, labels, NUM_CLASSES)


def random_images(batch: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """`batch` uniform random images in [0, 1], drawn on the CPU from `generator`."""
    return torch.rand(batch, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator).to(device)


def calibrate_batch_norm(net: nn.Module, images: torch.Tensor) -> None:
    """Sets the batch-norm running statistics to those of `images` (one train-mode pass).

    With the default running statistics (mean 0, variance 1) a randomly initialized net gives
    nearly the same logits for every random image and PGD cannot change its prediction; with
    calibrated statistics the predictions vary and the attack flips them.
    """
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average: this pass's statistics exactly
    net.train()
    with torch.no_grad():
        net(images)
    net.eval()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clock(fn: Callable[[], T], device: torch.device) -> tuple[T, float]:
    """(fn(), wall seconds of the call), the device synchronized before and after."""
    synchronize(device)
    start = time.perf_counter()
    result = fn()
    synchronize(device)
    return result, time.perf_counter() - start


def median_seconds(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Median wall seconds of `repeats` calls after one warm-up call."""
    fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)

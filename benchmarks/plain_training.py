"""The two sides of `training_throughput.py`: the project's modules and a plain PyTorch loop.

Both train `Normalize -> net` with SGD (lr 0.1, momentum 0.9, weight decay 5e-4) and a
per-step one-cycle schedule, on random uint8 CIFAR-sized images, with random crop (padding
4) and horizontal flips, in the same precision and memory format.
"""

import argparse
from functools import partial

import torch
import torch.nn.functional as F
from common import IMAGE_SIZE, NUM_CLASSES, build_net
from torch import nn

from mixup_robust.data.augment import random_crop, random_horizontal_flip
from mixup_robust.data.base import Arrays, InMemoryDataModule
from mixup_robust.mixing import soft_cross_entropy
from mixup_robust.nets import FastCNN, PlainCNN, build_classifier
from mixup_robust.precision import full_precision, to_channels_last
from mixup_robust.training import ERM, ClassifierModule, InterpolatedAT, Mixup, OneCycleSchedule
from mixup_robust.training.optimization import OneCycleFactor

EPS, STEP_SIZE = 8 / 255, 2 / 255
OPTIMIZER = {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4}


class RandomImages(InMemoryDataModule):
    """`size` seeded random uint8 3x32x32 training images with labels 0..9 (and 100 test)."""

    num_classes = NUM_CLASSES
    image_shape = (3, IMAGE_SIZE, IMAGE_SIZE)

    def __init__(self, size: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.size = size

    def load_split(self, split: str) -> Arrays:
        count = self.size if split == "train" else 100
        generator = torch.Generator().manual_seed(self.seed + (split == "test"))
        shape = (count, *self.image_shape)
        images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
        return images, torch.randint(0, NUM_CLASSES, (count,), generator=generator)


def _net_factory(name: str):
    # fast-tiny: FastCNN at widths 8-16, for dry runs on a CPU (gpu_suite.py --dry-run).
    tiny = partial(FastCNN, widths=(8, 8, 16, 16))
    return {"plain": PlainCNN, "fast": FastCNN, "fast-tiny": tiny}.get(
        name, lambda c, k: build_net(name)
    )


def method_net(args: argparse.Namespace, data: RandomImages) -> nn.Module:
    """`Normalize -> net`, freshly initialized from torch's global RNG."""
    return build_classifier(
        _net_factory(args.net), NUM_CLASSES, data.image_shape, data.mean, data.std
    )


def build_method(method: str, args: argparse.Namespace, data: RandomImages) -> ClassifierModule:
    """The project's LightningModule of `method` with the benchmark's settings."""
    kwargs = dict(
        num_classes=NUM_CLASSES, image_shape=data.image_shape, mean=data.mean, std=data.std,
        optimizer=partial(torch.optim.SGD, **OPTIMIZER), scheduler=OneCycleSchedule(0.2),
        scheduler_interval="step", channels_last=args.channels_last, compile=args.compile,
        compile_backend=args.compile_backend,
    )  # fmt: skip
    net = _net_factory(args.net)
    if method == "erm":
        return ERM(net, **kwargs)
    if method == "mixup":
        return Mixup(net, **kwargs)
    return InterpolatedAT(net, steps=args.iat_pgd_steps, **kwargs)


class PlainLoop:
    """A straightforward training loop of `method`; `step()` runs one batch."""

    def __init__(self, method, args, data: RandomImages, initial: dict, device) -> None:
        self.method, self.args, self.device = method, args, device
        self.model = method_net(args, data).to(device)
        self.model.load_state_dict(initial)
        if args.channels_last:
            self.model.to(memory_format=torch.channels_last)
        if args.compile:
            self.model.compile(backend=args.compile_backend)
        images, labels = data.arrays["train"]
        where = device if args.device_resident else torch.device("cpu")
        self.images, self.labels = images.to(where), labels.to(where)
        self.order = torch.randperm(len(labels), device=where)
        self.position = 0
        self.optimizer = torch.optim.SGD(self.model.parameters(), **OPTIMIZER)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, OneCycleFactor(args.warmup_steps + args.steps, 0.2)
        )
        self.bf16 = args.precision == "bf16-mixed"
        self.beta = torch.distributions.Beta(
            torch.tensor(1.0, device=device), torch.tensor(1.0, device=device)
        )

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.args.batch
        index = self.order[self.position : self.position + batch]
        self.position += batch
        images = self.images[index].to(self.device, non_blocking=True)
        labels = self.labels[index].to(self.device, non_blocking=True)
        images = random_crop(images.float().div_(255.0), 4)
        return random_horizontal_flip(images), labels

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        if self.args.channels_last:
            images = to_channels_last(images)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return self.model(images)

    def mixup_loss(self, images, labels, ratio, partners) -> torch.Tensor:
        view = ratio.view(-1, 1, 1, 1)
        mixed = view * images + (1 - view) * images[partners]
        one_hot = F.one_hot(labels, NUM_CLASSES).float()
        targets = ratio[:, None] * one_hot + (1 - ratio[:, None]) * one_hot[partners]
        return soft_cross_entropy(self.logits(mixed), targets)

    def pgd(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """L-inf PGD (uniform start) in eval mode and fp32, as the project's IAT."""
        self.model.eval()
        adversarial = (images + torch.empty_like(images).uniform_(-EPS, EPS)).clamp(0, 1)
        with full_precision(self.device):
            for _ in range(self.args.iat_pgd_steps):
                adversarial.requires_grad_(True)
                loss = F.cross_entropy(self.logits(adversarial), labels, reduction="sum")
                (gradient,) = torch.autograd.grad(loss, adversarial)
                adversarial = adversarial.detach() + STEP_SIZE * gradient.sign()
                adversarial = torch.min(torch.max(adversarial, images - EPS), images + EPS)
                adversarial = adversarial.clamp(0, 1)
        self.model.train()
        return adversarial.detach()

    def loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.method == "erm":
            return F.cross_entropy(self.logits(images), labels)
        ratio = self.beta.sample((len(labels),))
        partners = torch.randperm(len(labels), device=self.device)
        clean = self.mixup_loss(images, labels, ratio, partners)
        if self.method == "mixup":
            return clean
        adversarial = self.pgd(images, labels)
        return (clean + self.mixup_loss(adversarial, labels, ratio, partners)) / 2

    def step(self) -> None:
        images, labels = self.next_batch()
        loss = self.loss(images, labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()

"""The accuracy a plain PyTorch loop reaches on the shared CIFAR-10 zip: the CPU recipe's yardstick.

`configs/cifar10_cpu/` trains through the CLI; this script trains the same net (`PlainCNN`,
width 64) with nothing of the project's training code: SGD (lr 0.1, momentum 0.9, Nesterov,
weight decay 5e-4), a per-step one-cycle schedule written out here (linear warm-up over the
first 20 % of the steps, then cosine to 0), batch 128, horizontal flips (and a random crop
with `--crop-padding`), all 50,000 training images, and it prints the accuracy on the 10,000
test images after each epoch with the time so far. Run it from the repository root:

    python benchmarks/cifar10_cpu_reference.py --method erm --threads 1

With `--checkpoint <last.ckpt of a configs/cifar10_cpu run>` it trains nothing and prints that
model's accuracy on the same 10,000 test images, for the side-by-side comparison.
"""

import argparse
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from mixup_robust.data import ImageFolderDataModule
from mixup_robust.data.augment import random_crop, random_horizontal_flip
from mixup_robust.evaluation import load_classifier
from mixup_robust.nets import Normalize, PlainCNN

NUM_CLASSES = 10


def one_cycle_factor(step: int, total_steps: int, warmup_fraction: float = 0.2) -> float:
    """The lr multiplier at optimizer step `step`: linear warm-up, then cosine to 0."""
    warmup = max(1, round(warmup_fraction * total_steps))
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))


def mixup_loss(logits_of, images, labels, generator: torch.Generator) -> torch.Tensor:
    """Mixup with lambda ~ Beta(1, 1) per sample and a random partner permutation."""
    ratio = torch.rand(len(labels), generator=generator)  # Beta(1, 1) is uniform on [0, 1]
    partners = torch.randperm(len(labels), generator=generator)
    view = ratio.view(-1, 1, 1, 1)
    logits = logits_of(view * images + (1 - view) * images[partners])
    own = F.cross_entropy(logits, labels, reduction="none")
    other = F.cross_entropy(logits, labels[partners], reduction="none")
    return (ratio * own + (1 - ratio) * other).mean()


@torch.no_grad()
def test_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Percent of the test images classified correctly (batches of 1,000)."""
    model.eval()
    correct = sum(
        (model(images[i : i + 1000].float() / 255).argmax(1) == labels[i : i + 1000]).sum().item()
        for i in range(0, len(labels), 1000)
    )
    model.train()
    return 100 * correct / len(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="../shared/data/cifar10-jpeg.zip")
    parser.add_argument("--method", choices=("erm", "mixup"), default="erm")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--crop-padding", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default=None, help="only test this CLI checkpoint")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)

    data = ImageFolderDataModule(root=args.root, val_size=0, batch_size=args.batch)
    data.setup("fit")
    train_images, train_labels = data.arrays["train"]
    test_images, test_labels = data.arrays["test"]
    if args.checkpoint is not None:
        accuracy = test_accuracy(load_classifier(args.checkpoint)[0], test_images, test_labels)
        print(f"{args.checkpoint}: test accuracy {accuracy:.2f} %")
        return
    model = nn.Sequential(Normalize(data.mean, data.std), PlainCNN(3, NUM_CLASSES, args.width))
    optimizer = torch.optim.SGD(
        model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    steps_per_epoch = len(train_labels) // args.batch
    total_steps = steps_per_epoch * args.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: one_cycle_factor(step, total_steps)
    )
    start = time.perf_counter()
    for epoch in range(args.epochs):
        order = torch.randperm(len(train_labels), generator=generator)
        for batch in range(steps_per_epoch):
            index = order[batch * args.batch : (batch + 1) * args.batch]
            images = random_crop(train_images[index].float() / 255, args.crop_padding, generator)
            images, labels = random_horizontal_flip(images, generator), train_labels[index]
            if args.method == "mixup":
                loss = mixup_loss(model, images, labels, generator)
            else:
                loss = F.cross_entropy(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        accuracy = test_accuracy(model, test_images, test_labels)
        elapsed = time.perf_counter() - start
        print(f"{args.method} epoch {epoch + 1}: test accuracy {accuracy:.2f} % ({elapsed:.0f} s)")


if __name__ == "__main__":
    main()

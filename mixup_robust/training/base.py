"""The small base LightningModule of every training method (template: `training_loss`)."""

import abc
import shutil

import numpy as np
import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy
from typing_extensions import override

from mixup_robust.attacks import Attack, require_gradients
from mixup_robust.nets import NetFactory, build_classifier
from mixup_robust.precision import full_precision, to_channels_last
from mixup_robust.seeding import numpy_rng, resolve_seed, seeded_torch_rng
from mixup_robust.training.optimization import (
    ClassicMultiStepLR,
    ClassifierSGD,
    LRSchedulerCallable,
    OptimizerCallable,
    RunLengthSchedule,
    ScheduledModule,
    SchedulerInterval,
)


def check_compiler(backend: str) -> None:
    """Raises before any compute when `torch.compile` with `backend` cannot work here."""
    if backend not in torch.compiler.list_backends(exclude_tags=()):
        raise ValueError(
            f"compile_backend={backend!r} is not a torch.compile backend; choose one of "
            f"{torch.compiler.list_backends()}."
        )
    if backend == "inductor" and not torch.cuda.is_available() and shutil.which("g++") is None:
        raise RuntimeError(
            "compile: true with the inductor backend needs a C++ compiler on a CPU-only "
            "machine (none found on PATH): install g++, or set compile: false."
        )


class ClassifierModule(ScheduledModule, abc.ABC):
    """Trains `Normalize -> net`; subclasses define the loss in `training_loss`.

    Args:
        net: the network, called as `net(in_channels, num_classes)`.
        num_classes: number of classes (linked from the data by the CLI).
        image_shape: (C, H, W) of the images (linked from the data).
        mean: per-channel mean in [0, 1] pixel units (linked from the data).
        std: per-channel std in [0, 1] pixel units (linked from the data).
        optimizer: called with the module's parameters; in YAML a class path and its
            init_args (`torch.optim.SGD` with momentum, every paper's classifier;
            `torch.optim.Adam`, the VarMixup paper's Table 1; any other optimizer). Default:
            SGD, lr 0.1, momentum 0.9, weight decay 5e-4.
        scheduler: called with the optimizer (any torch scheduler, e.g. `MultiStepLR` or
            `OneCycleLR`), or a `RunLengthSchedule` laid out over the whole run
            (`CosineSchedule`, `OneCycleSchedule`), or None for a constant learning rate.
            Default: lr x 0.1 at epochs 100 and 150.
        scheduler_interval: 'epoch' or 'step': when the scheduler steps, and what a
            `RunLengthSchedule` counts (trainer.max_epochs or all optimizer steps).
        val_attack: if set, validation also reports accuracy under this attack (val/robust_acc).
        val_attack_batches: how many validation batches the attack runs on (it is slow).
        seed: seed of the method's random draws (mixup ratios, partners, attack starts);
            None follows the run's seed (`seed_everything`).
        channels_last: store the classifier's weights and inputs channels-last (NHWC): faster
            convolutions on tensor-core GPUs; the same values, so results do not change
            beyond float rounding. Works on CPU too (oneDNN).
        compile: `torch.compile` the classifier when a Trainer runs it (in place, so the
            checkpoint's keys do not change). On CPU this needs a C++ compiler (inductor).
        compile_backend: the torch.compile backend ('inductor'; 'eager' only checks tracing).
    """

    def __init__(
        self,
        net: NetFactory,
        num_classes: int = 10,
        image_shape: tuple[int, int, int] = (3, 32, 32),
        mean: tuple[float, ...] | None = None,
        std: tuple[float, ...] | None = None,
        optimizer: OptimizerCallable = ClassifierSGD,
        scheduler: LRSchedulerCallable | RunLengthSchedule | None = ClassicMultiStepLR,
        scheduler_interval: SchedulerInterval = "epoch",
        val_attack: Attack | None = None,
        val_attack_batches: int = 2,
        seed: int | None = None,
        channels_last: bool = False,
        compile: bool = False,
        compile_backend: str = "inductor",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.set_optimization(optimizer, scheduler, scheduler_interval)
        self.hparams.seed = resolve_seed(seed)  # the checkpoint records the seed used
        self.classifier = build_classifier(net, num_classes, image_shape, mean, std)
        self.num_classes = num_classes
        self.val_attack = val_attack
        self.val_attack_batches = val_attack_batches
        self.seed = self.hparams.seed
        self.channels_last = channels_last
        self.compile_backend = compile_backend if compile else None
        accuracy = MetricCollection({"acc": MulticlassAccuracy(num_classes, average="micro")})
        self.val_metrics = accuracy.clone(prefix="val/")
        self.val_robust_metrics = accuracy.clone(prefix="val/robust_")
        self.test_metrics = accuracy.clone(prefix="test/")

    def configure_model(self) -> None:
        """Applies the GPU options (channels_last, compile) once, before the Trainer's loops."""
        if self.channels_last:
            self.classifier.to(memory_format=torch.channels_last)
        if self.compile_backend is not None and not getattr(self, "_compiled", False):
            check_compiler(self.compile_backend)
            self.classifier.compile(backend=self.compile_backend)
            self._compiled = True

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of the classifier for images in [0, 1]."""
        if self.channels_last:
            images = to_channels_last(images)
        return self.classifier(images)

    @abc.abstractmethod
    def training_loss(
        self, images: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator
    ) -> torch.Tensor:
        """The scalar loss of one training batch; `rng` is this batch's seeded generator."""

    def batch_rng(self, batch_idx: int) -> np.random.Generator:
        """The generator of one training batch, keyed on (seed, rank, epoch, batch).

        Keying rather than carrying state makes resumed runs draw exactly what the
        uninterrupted run would have drawn, and gives each DDP rank its own stream.
        """
        return numpy_rng(self.seed, self.global_rank, self.current_epoch, batch_idx)

    @override
    def training_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        images, labels, _ = batch
        loss = self.training_loss(images, labels, self.batch_rng(batch_idx))
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True)
        return loss

    @override
    def validation_step(self, batch: tuple, batch_idx: int) -> None:
        images, labels, _ = batch
        self.val_metrics.update(self(images), labels)
        if self.val_attack is not None and batch_idx < self.val_attack_batches:
            require_gradients("Validation with val_attack")
            with (
                seeded_torch_rng(self.seed, batch_idx, device=images.device),
                full_precision(images.device),
            ):
                adversarial = self.val_attack(self.classifier, images, labels)
            self.val_robust_metrics.update(self(adversarial), labels)

    @override
    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute(), prog_bar=True)
        self.val_metrics.reset()
        if self.val_attack is not None:
            self.log_dict(self.val_robust_metrics.compute(), prog_bar=True)
            self.val_robust_metrics.reset()

    @override
    def test_step(self, batch: tuple, batch_idx: int) -> None:
        images, labels, _ = batch
        self.test_metrics.update(self(images), labels)

    @override
    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.compute())
        self.test_metrics.reset()

    def predict_step(self, batch: tuple, batch_idx: int) -> dict[str, torch.Tensor]:
        """Per sample: index, label, predicted class and its softmax probability."""
        images, labels, indices = batch
        confidence, prediction = torch.softmax(self(images), dim=1).max(dim=1)
        return {
            "index": indices, "label": labels, "prediction": prediction, "confidence": confidence
        }  # fmt: skip

"""The small base LightningModule of every training method (template: `training_loss`)."""

import abc
import shutil
from dataclasses import dataclass
from typing import Literal

import lightning as L
import numpy as np
import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from mixup_robust.attacks import Attack
from mixup_robust.nets import NetFactory, build_classifier
from mixup_robust.precision import full_precision, to_channels_last
from mixup_robust.seeding import numpy_rng, resolve_seed, seeded_torch_rng

ONE_CYCLE_START = 1 / 25
"""The one-cycle schedule starts at lr / 25 (PyTorch's OneCycleLR default)."""


def require_gradients(where: str) -> None:
    """Raises a clear error when attacks would run under inference mode."""
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            f"{where} runs an attack, which needs gradients, but Lightning is in inference mode. "
            "Set `trainer.inference_mode: false` (the mixup-robust CLI does by default)."
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


@dataclass(frozen=True)
class OneCycleFactor:
    """The one-cycle learning-rate factor of optimizer step `step` (0-based) of `total_steps`.

    Rises linearly from 1/25 at step 0 to 1 at step round(warmup_fraction x total_steps),
    then falls linearly to 1/(steps left) at the last step, reaching 0 just after it.
    """

    total_steps: int
    warmup_fraction: float

    def __call__(self, step: int) -> float:
        warmup = min(max(1, round(self.warmup_fraction * self.total_steps)), self.total_steps - 1)
        if step < warmup:
            return ONE_CYCLE_START + (1 - ONE_CYCLE_START) * step / warmup
        return max(0.0, (self.total_steps - step) / (self.total_steps - warmup))


class ClassifierModule(L.LightningModule, abc.ABC):
    """Trains `Normalize -> net` with SGD; subclasses define the loss in `training_loss`.

    Args:
        net: the network, called as `net(in_channels, num_classes)`.
        num_classes: number of classes (linked from the data by the CLI).
        image_shape: (C, H, W) of the images (linked from the data).
        mean: per-channel mean in [0, 1] pixel units (linked from the data).
        std: per-channel std in [0, 1] pixel units (linked from the data).
        optimizer: 'sgd' (momentum SGD, every paper's classifier) or 'adam' (the VarMixup
            paper's Table 1; momentum and nesterov unused, weight_decay is Adam's L2 term).
        lr: initial learning rate.
        momentum: SGD momentum.
        weight_decay: L2 weight decay applied to every parameter.
        nesterov: Nesterov momentum.
        schedule: 'multistep' (lr x gamma at each milestone epoch), 'cosine' (to zero over
            trainer.max_epochs), 'constant', or 'onecycle' (stepped every optimizer step:
            linear warm-up from lr / 25 to lr over `warmup_fraction` of all steps, then
            linear decay to zero; for short, large-batch runs such as the fast recipes).
        milestones: epochs at which the multistep schedule decays the learning rate.
        gamma: multistep decay factor.
        warmup_fraction: share of the training steps spent warming up (onecycle only).
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
        optimizer: Literal["sgd", "adam"] = "sgd",
        lr: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        nesterov: bool = False,
        schedule: Literal["multistep", "cosine", "constant", "onecycle"] = "multistep",
        milestones: tuple[int, ...] = (100, 150),
        gamma: float = 0.1,
        warmup_fraction: float = 0.2,
        val_attack: Attack | None = None,
        val_attack_batches: int = 2,
        seed: int | None = None,
        channels_last: bool = False,
        compile: bool = False,
        compile_backend: str = "inductor",
    ) -> None:
        super().__init__()
        if not 0 < warmup_fraction < 1:
            raise ValueError(f"warmup_fraction={warmup_fraction} must lie in (0, 1).")
        self.save_hyperparameters()
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

    def training_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        images, labels, _ = batch
        loss = self.training_loss(images, labels, self.batch_rng(batch_idx))
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True)
        return loss

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

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.compute(), prog_bar=True)
        self.val_metrics.reset()
        if self.val_attack is not None:
            self.log_dict(self.val_robust_metrics.compute(), prog_bar=True)
            self.val_robust_metrics.reset()

    def test_step(self, batch: tuple, batch_idx: int) -> None:
        images, labels, _ = batch
        self.test_metrics.update(self(images), labels)

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

    # Schedules whose shape depends on the run's length (not multistep or constant) are
    # stretched over trainer.max_epochs; resuming them under another length would continue
    # a different curve (a finished cosine would train on at lr 0), so that is refused.
    LENGTH_FREE_SCHEDULES = ("multistep", "constant")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["schedule_max_epochs"] = self.trainer.max_epochs

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        trainer = self._trainer
        if trainer is None or trainer.state.fn != "fit":
            return  # loading weights for evaluation: the schedule plays no part
        check_schedule_length(self.hparams.schedule, checkpoint, trainer.max_epochs)

    def configure_optimizers(self):
        hp = self.hparams
        if hp.optimizer == "adam":
            optimizer = torch.optim.Adam(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        else:
            optimizer = torch.optim.SGD(
                self.parameters(), lr=hp.lr, momentum=hp.momentum,
                weight_decay=hp.weight_decay, nesterov=hp.nesterov,
            )  # fmt: skip
        if hp.schedule == "multistep":
            scheduler = torch.optim.lr_scheduler.MultiStepLR(
                optimizer, list(hp.milestones), hp.gamma
            )
        elif hp.schedule == "cosine":
            epochs = max(1, self.trainer.max_epochs or 1)
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        elif hp.schedule == "onecycle":
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": self._one_cycle(optimizer), "interval": "step"},
            }
        else:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"},
        }

    def _one_cycle(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
        """Linear warm-up and linear decay over every optimizer step of the run.

        Momentum is left as configured (no momentum cycling): the schedule changes the
        learning rate only, as the other schedules do.
        """
        total_steps = self.trainer.estimated_stepping_batches
        if not 1 < total_steps < float("inf"):
            raise ValueError(
                "schedule 'onecycle' needs a finite number of training steps above 1: set "
                "trainer.max_epochs or trainer.max_steps."
            )
        factor = OneCycleFactor(int(total_steps), self.hparams.warmup_fraction)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def check_schedule_length(schedule: str, checkpoint: dict, max_epochs: int | None) -> None:
    """Raises if a length-dependent schedule is resumed with another `trainer.max_epochs`."""
    if schedule in ClassifierModule.LENGTH_FREE_SCHEDULES:
        return
    planned = checkpoint.get("schedule_max_epochs")
    if planned is None:  # checkpoints written before the length was recorded
        states = checkpoint.get("lr_schedulers") or [{}]
        planned = states[0].get("T_max")
    if planned is None or planned == max_epochs:
        return
    raise ValueError(
        f"The checkpoint's {schedule!r} learning-rate schedule was laid out over "
        f"trainer.max_epochs={planned}, but this run has max_epochs={max_epochs}. Resuming "
        f"would follow the old curve (beyond epoch {planned} a cosine trains at lr 0). Resume "
        f"with --trainer.max_epochs {planned}, or, to train longer, start a new run with the "
        "longer max_epochs (or use schedule: multistep, which does not depend on the length)."
    )

"""Part `recipe`: the fast mixup recipe trained for a short, fixed budget on the real CIFAR-10 zip.

`configs/cifar10_fast/mixup.yaml` exactly as `cli.py fit` builds it (the same `MixupRobustCLI`,
with `run=False` so that the suite adds its clock and runs fit and test itself), on the JPEG
zip (`ImageFolderDataModule`), with `trainer.max_epochs` set to the budget's epochs: the
one-cycle schedule is laid out over those epochs, so the accuracy is that of a short recipe,
not of the 60-epoch one. Measured: the set-up (zip decoding, the device copy) before the
first step, each epoch's training time (the device synchronized at its first and last step
only) and wall time (validation and checkpoint included), training images/s over the epochs
after the first (which holds the compilation), the fit's wall time and the accuracy of
`trainer.test` on the 10,000 test images. The full recipe's wall time is extrapolated from
these (first epoch + the others at the median later epoch) and labelled so.

The run's last checkpoint and the test images are left in `state` for the `bf16` part.
"""

import statistics
import time
from pathlib import Path

import torch
import yaml
from common import synchronize
from lightning.pytorch.callbacks import Callback

from gpu_parts.runner import Budget, PartLog
from mixup_robust.cli import MixupRobustCLI, trainer_defaults
from mixup_robust.run.last_checkpoint import LastCheckpoint

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "configs" / "cifar10_fast" / "mixup.yaml"


class EpochClock(Callback):
    """Per epoch: training seconds and wall seconds; stops the fit when `should_stop()`."""

    def __init__(self, device: torch.device, should_stop, report) -> None:
        self.device, self.should_stop, self.report = device, should_stop, report
        self.fit_start = self.first_step = 0.0
        self.epochs: list[dict] = []
        self.stopped = False
        self._train_start = self._epoch_start = 0.0

    def on_fit_start(self, trainer, module) -> None:
        self.fit_start = time.perf_counter()

    def on_train_epoch_start(self, trainer, module) -> None:
        synchronize(self.device)
        self._epoch_start = self._train_start = time.perf_counter()
        self.first_step = self.first_step or self._train_start
        self._steps = 0

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx: int) -> None:
        self._steps += 1
        if batch_idx + 1 == trainer.num_training_batches or self.should_stop():
            synchronize(self.device)
            self._train_end = time.perf_counter()
            if batch_idx + 1 < trainer.num_training_batches:
                self.stopped = trainer.should_stop = True

    def on_train_epoch_end(self, trainer, module) -> None:
        row = {
            "epoch": trainer.current_epoch, "steps": self._steps,
            "complete": self._steps == trainer.num_training_batches,
            "images": self._steps * trainer.datamodule.batch_size,
            "train s": self._train_end - self._train_start,
            "epoch wall s": time.perf_counter() - self._epoch_start,
            "val/acc": _float(trainer.callback_metrics.get("val/acc")),
        }  # fmt: skip
        self.epochs.append(row)
        self.report(row)
        if trainer.current_epoch + 1 < trainer.max_epochs and self.should_stop():
            self.stopped = trainer.should_stop = True


def _float(value: object) -> float | None:
    return None if value is None else float(value)


def build_cli(arguments: list[str]) -> MixupRobustCLI:
    """`cli.py fit`'s CLI object for `arguments` (`mixup_robust.cli.main`'s settings), not run."""
    return MixupRobustCLI(
        model_class=None, datamodule_class=None, subclass_mode_model=True,
        subclass_mode_data=True, trainer_defaults=trainer_defaults(),
        save_config_kwargs={"overwrite": False}, seed_everything_default=0,
        auto_configure_optimizers=False, args=arguments, run=False,
    )  # fmt: skip


def recipe_arguments(zip_path: Path, epochs: int, root: Path, overrides: list[str]) -> list[str]:
    """The command line of the fast mixup recipe on the zip for `epochs` epochs."""
    return [
        "--config", str(RECIPE), "--data", "mixup_robust.data.ImageFolderDataModule",
        "--data.init_args.root", str(zip_path), "--trainer.max_epochs", str(epochs),
        "--trainer.default_root_dir", str(root), *overrides,
    ]  # fmt: skip


class RecipePart:
    """The part as a callable `(budget, log)`; `state` receives the checkpoint (run in `root`)."""

    def __init__(self, zip_path: Path | None, epochs: int, overrides: list[str],
                 device: torch.device, state: dict, root: Path) -> None:  # fmt: skip
        self.zip_path, self.epochs, self.overrides = zip_path, epochs, overrides
        self.device, self.state, self.root = device, state, root

    def __call__(self, budget: Budget, log: PartLog) -> None:
        if self.zip_path is None or not self.zip_path.is_file():
            raise FileNotFoundError(
                f"No CIFAR-10 zip at {self.zip_path}: copy ../shared/data/cifar10-jpeg.zip to "
                ".gpu_data/ and carry that folder (benchmarks/README.md, 'GPU suite')."
            )
        full_epochs = yaml.safe_load(RECIPE.read_text())["trainer"]["max_epochs"]
        log.info("data", str(self.zip_path))
        log.info("epochs (one-cycle laid out over them)", self.epochs)
        torch._dynamo.reset()
        arguments = recipe_arguments(self.zip_path, self.epochs, self.root, self.overrides)
        log.info("command", "python cli.py fit " + " ".join(arguments))
        start = time.perf_counter()
        cli = build_cli(arguments)
        clock = EpochClock(self.device, budget.expired, lambda row: log.row("epochs", row))
        cli.trainer.callbacks.append(clock)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        fit_s = time.perf_counter() - start
        last = [c for c in cli.trainer.callbacks if isinstance(c, LastCheckpoint)]
        if last and last[0].last_model_path:  # the final epoch's (or the cap's) last.ckpt
            self.state["checkpoint"] = last[0].last_model_path
            self.state["test"] = cli.datamodule.arrays["test"]
            self.state["recipe"] = f"FastCNN after {len(clock.epochs)} epochs of the fast recipe"
        log.info("set-up before the first step s (CLI, zip decoding, device copy)",
                 clock.first_step - start)  # fmt: skip
        log.info("fit wall s (set-up, compilation, training, validation, checkpoints)", fit_s)
        self.figures(log, clock, full_epochs, fit_s)
        if clock.stopped:
            log.info("stopped by the cap", f"after {len(clock.epochs)} of {self.epochs} "
                     "epochs: the schedule did not finish")  # fmt: skip
        if budget.expired():
            return
        test_start = time.perf_counter()
        results = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
        log.info("test s", time.perf_counter() - test_start)
        count = len(cli.datamodule.arrays["test"][1])
        log.info(f"test accuracy % (trainer.test on the zip's {count} test images)",
                 100 * results[0]["test/acc"])  # fmt: skip

    def figures(self, log: PartLog, clock: EpochClock, full_epochs: int, fit_s: float) -> None:
        epochs = clock.epochs
        if not epochs:
            return
        log.info("first epoch wall s (holds the compilation)", epochs[0]["epoch wall s"])
        later = epochs[1:] or epochs
        label = "" if epochs[1:] else " (only epoch 0: compilation included)"
        images = sum(row["images"] for row in later)
        log.info(f"training images/s{label}", images / sum(row["train s"] for row in later))
        whole = [row for row in later if row["complete"]] or later  # not one cut by the cap
        per_epoch = statistics.median(row["epoch wall s"] for row in whole)
        log.info(f"epoch wall s, median{label}", per_epoch)
        outside = fit_s - sum(row["epoch wall s"] for row in epochs)  # set-up, teardown
        full = outside + epochs[0]["epoch wall s"] + (full_epochs - 1) * per_epoch
        log.info(f"EXTRAPOLATED full recipe fit s ({full_epochs} epochs: set-up + first epoch "
                 "+ the others at the median epoch)", full)  # fmt: skip

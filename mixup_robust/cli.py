"""The command line: `python cli.py fit|validate|test|predict --config ...` (LightningCLI)."""

import os

from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar
from lightning.pytorch.cli import LightningCLI

# Imported so that class paths in configs resolve and checkpoints can be re-instantiated.
import mixup_robust.data  # noqa: F401
import mixup_robust.evaluation  # noqa: F401
import mixup_robust.training  # noqa: F401


class MixupRobustCLI(LightningCLI):
    """LightningCLI whose model is any LightningModule and whose data is any DataModule.

    The data's number of classes, image shape and per-channel statistics are linked into the
    model, so configs never repeat them.
    """

    def add_arguments_to_parser(self, parser) -> None:
        for source, target in (
            ("data.num_classes", "model.init_args.num_classes"),
            ("data.image_shape", "model.init_args.image_shape"),
            ("data.mean", "model.init_args.mean"),
            ("data.std", "model.init_args.std"),
        ):
            parser.link_arguments(source, target, apply_on="instantiate")


def trainer_defaults() -> dict:
    """Attacks need gradients in validation and test, so inference mode is off."""
    return {
        "inference_mode": False,
        "deterministic": "warn",
        "callbacks": [
            RichProgressBar(leave=True),
            ModelCheckpoint(
                monitor="val/acc", mode="max", save_last=True, filename="best-{epoch}-{step}"
            ),
        ],
    }


def main(args: list[str] | None = None) -> MixupRobustCLI:
    """Runs the CLI (also the `mixup-robust` console script)."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return MixupRobustCLI(
        model_class=None,
        datamodule_class=None,
        subclass_mode_model=True,
        subclass_mode_data=True,
        trainer_defaults=trainer_defaults(),
        save_config_kwargs={"overwrite": False},
        seed_everything_default=0,
        args=args,
    )


if __name__ == "__main__":
    main()

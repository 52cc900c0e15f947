"""The command line: `python cli.py fit|validate|test|predict --config ...` (LightningCLI)."""

import os
import signal
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from rich.console import Console
from typing_extensions import override

# Imported so that class paths in configs resolve and checkpoints can be re-instantiated.
import mixup_robust.data
import mixup_robust.evaluation
import mixup_robust.training  # noqa: F401
from mixup_robust.config_checks import (
    check_ckpt_path_imports,
    parse_command_line,
    strict_yaml_mode,
)
from mixup_robust.evaluation.predictions import PredictionsWriter
from mixup_robust.evaluation.stop_signals import EvaluationStopped
from mixup_robust.run.checkpoint_io import AtomicCheckpointIO, CheckpointNoSpaceError
from mixup_robust.run.guards import FiniteTraining
from mixup_robust.run.last_checkpoint import LastCheckpoint
from mixup_robust.run.preemption import PreemptionCheckpoint
from mixup_robust.run.progress_bar import RichBar
from mixup_robust.run.refusal import RefusalCleanup
from mixup_robust.run.run_settings import (
    Resumed,
    RunSettings,
    prepare_run,
    read_resumed,
)
from mixup_robust.run.saved_config import RequeueSafeSaveConfig

_PARSER_FILES = (f"{os.sep}jsonargparse{os.sep}", f"{os.sep}lightning{os.sep}")
# The shell's status of a process ended by SIGTERM: schedulers and scripts read it as "killed".
SIGTERM_EXIT_STATUS = 128 + signal.SIGTERM


class MixupRobustCLI(LightningCLI):
    """LightningCLI whose model is any LightningModule and whose data is any DataModule.

    The data's number of classes, image shape and per-channel statistics are linked into the
    model, so configs never repeat them. `seed_everything` drives every seed that a config
    leaves unset, and a class's own error message is what a wrong value shows.
    """

    _resumed: Resumed | None = None  # the checkpoint of `fit --ckpt_path` (`_parse_ckpt_path`)

    @override
    def init_parser(self, **kwargs: Any) -> LightningArgumentParser:
        # YAML that repeats a key is refused (config_checks), not read as its last value.
        return super().init_parser(**{"parser_mode": strict_yaml_mode(), **kwargs})

    @override
    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        if isinstance(args, (dict, Namespace)):
            super().parse_arguments(parser, args)
        else:  # a list on the command line replaces the config's list (config_checks)
            self.config = parse_command_line(parser, args)
        # Next, Lightning parses (imports) the class paths of --ckpt_path: only trusted ones.
        check_ckpt_path_imports(self.config)

    @override
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for source, target in (
            ("data.num_classes", "model.init_args.num_classes"),
            ("data.image_shape", "model.init_args.image_shape"),
            ("data.mean", "model.init_args.mean"),
            ("data.std", "model.init_args.std"),
        ):
            parser.link_arguments(source, target, apply_on="instantiate")
        parser.add_argument(
            "--resume_overrides",
            type=str | None,
            default=None,
            help="fit --ckpt_path: settings this resume may change from the checkpoint's, a "
            "comma list (lr,max_epochs); a name covers every key in which its dot-separated "
            "parts occur in a row. Any other difference is refused.",
        )

    @override
    def _parse_ckpt_path(self) -> None:
        """Reads the checkpoint of `--ckpt_path` (the project's errors for a bad file).

        LightningCLI would apply its hyperparameters over the config and the command line; a
        resume (`fit`) keeps this command's settings and compares them with the checkpoint's
        instead (`after_instantiate_classes`). Other subcommands keep Lightning's behaviour.
        """
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else self.config
        self._resumed = read_resumed(config.get("ckpt_path"))
        if subcommand != "fit":
            super()._parse_ckpt_path()

    def before_instantiate_classes(self) -> None:
        """Writes the run's seed into every unset `seed` of the model and data.

        One seed then drives the weights, data order, validation split, augmentation and the
        method's draws; a part's seed set explicitly in a config keeps its own value. The
        resolved value is what config.yaml and the checkpoint record.
        """
        config = self.config[self.subcommand] if self.subcommand else self.config
        seed = config.get("seed_everything")
        if seed is None or isinstance(seed, bool):
            return
        for part in ("model", "data"):
            init_args = config.get(f"{part}.init_args")
            if init_args is not None and "seed" in init_args and init_args.seed is None:
                init_args.seed = int(seed)

    @override
    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except Exception as error:
            raise _own_error(error) from None

    @override
    def after_instantiate_classes(self) -> None:
        """A resume trains with this command's settings or is refused (`resume_check`)."""
        data = self._get(self.config, "data")
        prepare_run(
            self.trainer,
            self.model,
            data.as_dict() if data is not None else None,
            self._get(self.config, "resume_overrides"),
            self._resumed if self.subcommand == "fit" else None,
        )

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The trainer, with a rich bar (unless disabled) and atomic checkpoint files."""
        config = self._get(self.config_init, "trainer", default={})
        callbacks = list(kwargs.get("callbacks", config.get("callbacks")) or [])
        wanted = config.get("enable_progress_bar", kwargs.get("enable_progress_bar")) is not False
        if wanted and not any(isinstance(callback, ProgressBar) for callback in callbacks):
            kwargs["callbacks"] = [*callbacks, RichBar(leave=True)]
        trainer = super().instantiate_trainer(**kwargs)
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # not a user's own IO
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        return trainer


def _own_error(error: BaseException) -> BaseException:
    """The innermost error of a chain when it was raised by a class, not by the parser.

    jsonargparse wraps an error of a class's `__init__` in tens of lines of "Does not
    validate against any of the Union subtypes"; the class's own message is the useful one.
    """
    innermost = error
    while (inner := _inner(innermost)) is not None:
        innermost = inner
    traceback = innermost.__traceback__
    while traceback is not None and traceback.tb_next is not None:
        traceback = traceback.tb_next
    if innermost is error or traceback is None:
        return error
    frame = traceback.tb_frame
    if any(part in frame.f_code.co_filename for part in _PARSER_FILES):
        return error  # the parser's own complaint (a wrong type): keep its message
    raised_by = frame.f_locals.get("self")
    if raised_by is not None and len(innermost.args) == 1 and isinstance(innermost.args[0], str):
        innermost.args = (f"{innermost.args[0]} (raised by {type(raised_by).__qualname__})",)
    return innermost.with_traceback(None)


def _inner(error: BaseException) -> BaseException | None:
    """The error that `error` reports on (its cause, or a context not suppressed)."""
    if error.__cause__ is not None:
        return error.__cause__
    return None if error.__suppress_context__ else error.__context__


def trainer_defaults() -> dict:
    """Attacks need gradients in validation and test, so inference mode is off.

    `best-*.ckpt` is the best epoch by `val/acc`; `last.ckpt` is written by `LastCheckpoint`
    after every epoch and at a SIGTERM, not by `save_last` (which follows the best one).
    """
    return {
        "inference_mode": False,
        "deterministic": "warn",
        "callbacks": [
            FiniteTraining(),
            PreemptionCheckpoint(),
            PredictionsWriter(),
            RefusalCleanup(),
            ModelCheckpoint(
                monitor="val/acc", mode="max", save_last=False, filename="best-{epoch}-{step}"
            ),
            LastCheckpoint(),
            RunSettings(),
        ],
    }


def main(args: list[str] | None = None) -> MixupRobustCLI:
    """Runs the CLI (also the `mixup-robust` console script)."""
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        return MixupRobustCLI(
            model_class=None,
            datamodule_class=None,
            subclass_mode_model=True,
            subclass_mode_data=True,
            trainer_defaults=trainer_defaults(),
            save_config_callback=RequeueSafeSaveConfig,
            save_config_kwargs={"overwrite": False},
            seed_everything_default=0,
            # The optimizer and schedule are the model's own arguments
            # (model.init_args.optimizer, .scheduler, .scheduler_interval); Lightning's top-level
            # `optimizer` / `lr_scheduler` would silently replace them (and the schedule-length
            # guard), so they do not exist.
            auto_configure_optimizers=False,
            args=args,
        )
    except EvaluationStopped:  # it printed where its work is and the command that resumes
        raise SystemExit(SIGTERM_EXIT_STATUS) from None
    except SIGTERMException:
        # Lightning stops its loops gracefully on SIGTERM and raises a SystemExit without a
        # status, so a killed run would end "successfully" (status 0) with nothing finished.
        _report_sigterm()
        raise SystemExit(SIGTERM_EXIT_STATUS) from None
    except CheckpointNoSpaceError as error:  # one line, not Lightning's and torch's traceback
        Console(stderr=True, soft_wrap=True).print(str(error), highlight=False, markup=False)
        raise SystemExit(1) from None


@rank_zero_only
def _report_sigterm() -> None:
    Console(stderr=True).print(
        "[bold red]Stopped by SIGTERM[/] before the run finished: its results are incomplete "
        "and no results file was written for the unfinished stage.\n"
        "A training run saved last.ckpt at the end of the step the signal arrived in (in "
        "<default_root_dir>/lightning_logs/version_*/checkpoints/; a signal during validation "
        "keeps the last epoch's). Resume training with `python cli.py fit --config <config> "
        "--ckpt_path <that last.ckpt>`. On SLURM, "
        "scripts/slurm_fit.sbatch checkpoints and requeues on the warning signal instead.",
        highlight=False,
    )


if __name__ == "__main__":
    main()

"""The run's `config.yaml`: never overwritten, but a requeued SLURM job may find its own."""

from pathlib import Path

import lightning as L
from lightning.pytorch.cli import SaveConfigCallback
from typing_extensions import override


class RequeueSafeSaveConfig(SaveConfigCallback):
    """Lightning's `SaveConfigCallback`, which also accepts a `config.yaml` that is this run's.

    Under SLURM, Lightning's default logger names the version folder by the job id, so a job
    that SLURM requeued after a pre-emption (`scripts/slurm_fit.sbatch`) writes into the
    folder of its first start, where `config.yaml` already exists. Lightning refuses any
    existing file unless told to overwrite, and the requeued job would stop at once. Here a
    file whose text equals what this run would write is taken as its own (the same command,
    restarted); a file that differs is refused as before, so an earlier run's settings are
    never overwritten.
    """

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not self.already_saved and not self.overwrite and self.save_to_log_dir:
            log_dir = trainer.log_dir
            path = Path(log_dir) / self.config_filename if log_dir is not None else None
            own = False
            if trainer.is_global_zero and path is not None and path.is_file():
                written = self.parser.dump(self.config, skip_none=False)
                own = path.read_text() == written
            if trainer.strategy.broadcast(own):
                self.already_saved = True  # the file is this run's; nothing to write
                if trainer.is_global_zero:
                    self.save_config(trainer, pl_module, stage)
                return
        super().setup(trainer, pl_module, stage)

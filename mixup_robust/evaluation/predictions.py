"""`cli.py predict`: per-sample predictions written to predictions.csv in the run directory."""

from pathlib import Path

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import Callback
from rich.console import Console
from typing_extensions import override

from mixup_robust.atomic import write_atomically
from mixup_robust.evaluation.measurement import MeasurementModule
from mixup_robust.evaluation.run_files import records_to_csv

PREDICTIONS_FILE = "predictions.csv"


class PredictionsWriter(Callback):
    """Collects what `predict_step` returns and writes it as one CSV row per sample.

    A module's `predict_step` returns a dict of 1-D tensors of one value per sample (e.g.
    `index`, `label`, `prediction`, `confidence`, or one prediction and confidence per
    defense). Rows are sorted by the sample index, gathered from every rank, and written once,
    atomically, by rank 0 into the run directory (the results directory of a measurement
    module); an existing predictions.csv is refused before any compute.
    """

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.path: Path | None = None

    def _path(self, trainer: L.Trainer, module: L.LightningModule) -> Path:
        if isinstance(module, MeasurementModule):
            return module.results_dir / PREDICTIONS_FILE
        return Path(trainer.log_dir or trainer.default_root_dir) / PREDICTIONS_FILE

    @override
    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.rows = []
        # On every rank: trainer.log_dir is a collective (a broadcast) under DDP.
        self.path = path = self._path(trainer, pl_module)
        if trainer.is_global_zero and path.exists():
            raise FileExistsError(
                f"{path} already holds an earlier run's predictions. Choose another "
                "trainer.default_root_dir (or model.init_args.output_dir), or move it away."
            )

    @override
    def on_predict_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: object, batch: object,
        batch_idx: int, dataloader_idx: int = 0,
    ) -> None:  # fmt: skip
        if not isinstance(outputs, dict):
            return  # a module whose predictions are not per-sample columns
        columns = {name: value.detach().cpu().tolist() for name, value in outputs.items()}
        length = len(next(iter(columns.values()), []))
        self.rows += [{name: values[i] for name, values in columns.items()} for i in range(length)]

    @override
    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rows = self.rows
        if dist.is_available() and dist.is_initialized() and trainer.world_size > 1:
            gathered: list = [None] * trainer.world_size
            dist.all_gather_object(gathered, rows)
            rows = [row for part in gathered for row in part]
        if not trainer.is_global_zero or not rows:
            return
        rows.sort(key=lambda row: row.get("index", 0))
        write_atomically(self.path, records_to_csv(rows))
        Console().print(f"wrote {len(rows)} predictions to {self.path}")


def prediction_columns(name: str, log_probs: torch.Tensor) -> dict[str, torch.Tensor]:
    """`<name>prediction` (argmax) and `<name>confidence` (its probability) per sample."""
    confidence, prediction = log_probs.detach().max(dim=1)
    return {f"{name}prediction": prediction, f"{name}confidence": confidence.exp()}

"""Accuracy under common corruptions (VarMixup paper, Table 4) as a LightningModule."""

import time

import torch
from rich.table import Table
from torchmetrics import Metric
from typing_extensions import override

from mixup_robust.evaluation.data_contracts import CorruptionStreamsData, required_datamodule
from mixup_robust.evaluation.measurement import MeasurementModule, check_images
from mixup_robust.evaluation.names import CORRUPTION
from mixup_robust.evaluation.store import SAMPLE_FIELDS, sample_rows

MEAN = "mean"
_PREDICTION, _LABEL = SAMPLE_FIELDS.index("prediction"), SAMPLE_FIELDS.index("label")


class StreamAccuracy(Metric):
    """Correct predictions and sample counts per stream: sum states, exact under DDP."""

    full_state_update = False

    def __init__(self, streams: int) -> None:
        super().__init__()
        self.add_state("correct", torch.zeros(streams, dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("total", torch.zeros(streams, dtype=torch.int64), dist_reduce_fx="sum")

    @override
    def update(self, stream: int, predictions: torch.Tensor, labels: torch.Tensor) -> None:
        self.correct[stream] += (predictions == labels).sum()
        self.total[stream] += labels.numel()

    @override
    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.correct.clone(), self.total.clone()


class CorruptionEvaluation(MeasurementModule):
    """Accuracy of a classifier on every (corruption, severity) stream of the data.

    Needs `mixup_robust.data.CorruptionDataModule` (one test DataLoader per stream). Writes
    one record per stream, one per corruption (mean over its severities, severity 'mean')
    and the overall mean over corruptions and severities (corruption 'mean'), the number the
    paper's Table 4 reports. Means are unweighted means of the streams' accuracies.

    Args:
        checkpoint: training checkpoint of the classifier (`<run>/checkpoints/last.ckpt`).
        num_classes: classes of the data (linked by the CLI; checked against the checkpoint).
        image_shape: (C, H, W) of the data (linked; checked against the checkpoint).
        output_dir: where results go; default: the run's log directory.
        seed: unused (the measurement is deterministic); kept for uniform configs.
        shard: `i/n`: only every n-th test batch from the i-th on (docs/evaluation-store.md).
    """

    def __init__(
        self,
        checkpoint: str,
        num_classes: int | None = None,
        image_shape: tuple[int, int, int] | None = None,
        output_dir: str | None = None,
        seed: int | None = None,
        shard: str | None = None,
    ) -> None:
        super().__init__(checkpoint, num_classes, image_shape, output_dir, seed, shard)
        self.save_hyperparameters()
        self.streams: list[tuple[str, int]] = []

    @override
    def setup(self, stage: str) -> None:
        super().setup(stage)
        if not self.streams:
            datamodule = required_datamodule(
                self,
                CorruptionStreamsData,
                "CorruptionEvaluation needs mixup_robust.data.CorruptionDataModule as data "
                "(one test DataLoader per corruption and severity).",
            )
            self.streams = list(datamodule.streams)
            self.accuracy = StreamAccuracy(len(self.streams))

    @override
    def test_step(self, batch: tuple, batch_idx: int, dataloader_idx: int = 0) -> None:
        images, labels, sample_index = batch
        check_images(images)
        if not self.in_shard(batch_idx):  # another shard's batch
            return
        unit = f"stream {dataloader_idx} batch {batch_idx} (sample {int(sample_index[0])})"
        if self.unit_done(unit):
            return
        started = time.perf_counter()
        with torch.no_grad():
            log_probs = self.classifier(images).log_softmax(dim=1)
        confidence, predictions = log_probs.exp().max(dim=1)
        name, severity = self.streams[dataloader_idx]
        rows = sample_rows(
            len(labels), slot=list(range(len(labels))), sample=sample_index, trial=0,
            defense="none", attack=f"{name} severity {severity}", label=labels,
            correct=predictions == labels, prediction=predictions, confidence=confidence,
        )  # fmt: skip
        self.commit_unit(unit, batch_idx, dataloader_idx, rows, {"stream": dataloader_idx}, started)

    @override
    def on_test_epoch_end(self) -> None:
        if not self.ready_to_report():  # a shard, while others are unfinished
            return
        for unit in self.finished_units():  # the accuracies come from the store
            rows = self.unit_rows(unit.name)
            predictions = torch.tensor([row[_PREDICTION] for row in rows], device=self.device)
            labels = torch.tensor([row[_LABEL] for row in rows], device=self.device)
            self.accuracy.update(unit.payload["stream"], predictions, labels)
        correct, total = self.accuracy.compute()
        self.accuracy.reset()
        self.results = corruption_records(self.streams, correct, total, str(self.checkpoint))
        self.report(self.results)

    @override
    def table(self, records: list[dict]) -> Table:
        return corruption_table(records)


def corruption_records(
    streams: list[tuple[str, int]], correct: torch.Tensor, total: torch.Tensor, checkpoint: str
) -> list[dict]:
    """Records per stream, per corruption (severity 'mean') and overall (corruption 'mean')."""

    def record(corruption: str, severity: int | str, n: int, accuracy: float) -> dict:
        return {
            "measure": CORRUPTION,
            "corruption": corruption,
            "severity": severity,
            "n": n,
            "accuracy": accuracy,
            "checkpoint": checkpoint,
        }

    per_stream = [
        record(name, severity, int(count), float(right) / int(count) if count else float("nan"))
        for (name, severity), right, count in zip(
            streams, correct.tolist(), total.tolist(), strict=True
        )
    ]
    records = list(per_stream)
    for name in dict.fromkeys(name for name, _ in streams):
        members = [r for r in per_stream if r["corruption"] == name]
        records.append(record(name, MEAN, sum(r["n"] for r in members), _mean(members)))
    if per_stream:
        records.append(record(MEAN, MEAN, sum(r["n"] for r in per_stream), _mean(per_stream)))
    return records


def _mean(records: list[dict]) -> float:
    return sum(r["accuracy"] for r in records) / len(records)


def corruption_table(records: list[dict]) -> Table:
    """Accuracy (%) with one row per corruption and one column per severity, plus means."""
    table = Table(title="Accuracy under common corruptions (%)")
    severities = list(dict.fromkeys(r["severity"] for r in records if r["severity"] != MEAN))
    table.add_column("corruption")
    for severity in [*severities, MEAN]:
        table.add_column(str(severity), justify="right")
    value = {(r["corruption"], r["severity"]): r["accuracy"] for r in records}
    for name in dict.fromkeys(r["corruption"] for r in records):
        cells = [value.get((name, severity)) for severity in [*severities, MEAN]]
        table.add_row(name, *["-" if c is None else f"{100 * c:.2f}" for c in cells])
    return table

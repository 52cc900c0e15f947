"""The local-linearity measurement (VarMixup paper, Fig. 4) as a LightningModule."""

import time
from pathlib import Path

import torch
from rich.table import Table
from torch import nn
from torchmetrics import SumMetric
from typing_extensions import override

from mixup_robust.attacks import require_gradients
from mixup_robust.attacks.budget import Budget, parse_budget
from mixup_robust.evaluation.linearity.figures import plot_local_linearity
from mixup_robust.evaluation.linearity.local_linearity import local_linearity_error
from mixup_robust.evaluation.measurement import MeasurementModule, check_images
from mixup_robust.evaluation.names import LOCAL_LINEARITY
from mixup_robust.evaluation.store import SAMPLE_FIELDS, sample_rows
from mixup_robust.seeding import Stream, keyed_uniform

_VALUE, _ATTACK = SAMPLE_FIELDS.index("value"), SAMPLE_FIELDS.index("attack")


class LocalLinearityEvaluation(MeasurementModule):
    """Average local linearity error of the classifier's cross-entropy, for several eps.

    For each eps, PGD maximizes |L(x + d) - L(x) - d . grad_x L(x)| over the L-inf eps-ball
    (see `local_linearity_error`); the per-sample maxima are averaged over the test data.
    Random starts are keyed on (seed, sample index, eps), so they do not depend on batch
    size or the number of ranks; sums are torchmetrics states, so under DDP each test sample
    counts exactly once.

    Args:
        checkpoint: training checkpoint of the classifier (`<run>/checkpoints/last.ckpt`).
        eps: L-inf radii in pixel units, floats or fractions such as "8/255".
        steps: PGD iterations per eps.
        relative_step_size: PGD step as a fraction of eps (default 2.5 / steps).
        plots: draw local_linearity.png (error against eps).
        num_classes: classes of the data (linked by the CLI; checked against the checkpoint).
        image_shape: (C, H, W) of the data (linked; checked against the checkpoint).
        output_dir: where results go; default: the run's log directory.
        seed: seed of the random starts.
        shard: `i/n`: only every n-th test batch from the i-th on (docs/evaluation-store.md).
    """

    def __init__(
        self,
        checkpoint: str,
        eps: list[Budget] | None = None,
        steps: int = 20,
        relative_step_size: float | None = None,
        plots: bool = True,
        num_classes: int | None = None,
        image_shape: tuple[int, int, int] | None = None,
        output_dir: str | None = None,
        seed: int | None = None,
        shard: str | None = None,
    ) -> None:
        super().__init__(checkpoint, num_classes, image_shape, output_dir, seed, shard)
        self.save_hyperparameters()
        budgets = ["2/255", "4/255", "8/255", "16/255"] if eps is None else eps
        if not budgets:
            raise ValueError("eps is empty; give at least one radius such as '8/255'.")
        self.eps = [parse_budget(value, "eps") for value in budgets]
        if steps < 1:
            raise ValueError(f"steps={steps}; the PGD maximization needs at least one step.")
        self.steps = steps
        self.relative_step_size = 2.5 / steps if relative_step_size is None else relative_step_size
        self.plots = plots
        self.sums = nn.ModuleList([SumMetric().set_dtype(torch.float64) for _ in self.eps])
        self.counts = nn.ModuleList([SumMetric().set_dtype(torch.float64) for _ in self.eps])

    @override
    def test_step(self, batch: tuple, batch_idx: int) -> None:
        images, labels, sample_index = batch
        check_images(images)
        if not self.in_shard(batch_idx):  # another shard's batch
            return
        require_gradients("LocalLinearityEvaluation")
        unit = f"batch {batch_idx} (sample {int(sample_index[0])})"
        if self.unit_done(unit):
            return
        started, rows = time.perf_counter(), []
        for number, eps in enumerate(self.eps):
            errors = local_linearity_error(
                self.classifier,
                images,
                labels,
                eps,
                steps=self.steps,
                step_size=self.relative_step_size * eps,
                start=self._start(images, sample_index, number),
            )
            rows += sample_rows(
                len(labels), slot=list(range(len(labels))), sample=sample_index, trial=0,
                defense="none", attack=f"eps {number}", label=labels, value=errors,
            )  # fmt: skip
        self.commit_unit(unit, batch_idx, 0, rows, started=started)

    def _replay(self) -> None:
        """Adds every stored batch's errors to the sums, per eps, in the run's order."""
        for unit in self.finished_units():
            rows = self.unit_rows(unit.name)
            for number in range(len(self.eps)):
                attack = f"eps {number}"
                errors = torch.tensor(
                    [row[_VALUE] for row in rows if row[_ATTACK] == attack], dtype=torch.float32
                )
                self.sums[number].update(errors.double().sum())
                self.counts[number].update(torch.tensor(float(len(errors)), dtype=torch.float64))

    def _start(self, images: torch.Tensor, sample_index: torch.Tensor, number: int) -> torch.Tensor:
        """Random-start draws in [-1, 1], keyed on (seed, sample, eps number, element)."""
        elements = torch.arange(images[0].numel(), device=images.device)
        draws = keyed_uniform(
            self.seed, sample_index.long()[:, None], elements[None], number, Stream.LINEARITY_START
        )
        return (2 * draws - 1).to(images.dtype).view_as(images)

    @override
    def on_test_epoch_end(self) -> None:
        if not self.ready_to_report():  # a shard, while others are unfinished
            return
        self._replay()
        self.results = self._records()
        for metric in [*self.sums, *self.counts]:
            metric.reset()
        self.report(self.results)

    def _records(self) -> list[dict]:
        records = []
        for number, eps in enumerate(self.eps):
            n = int(self.counts[number].compute().item())
            total = float(self.sums[number].compute().item())
            records.append(
                {
                    "measure": LOCAL_LINEARITY,
                    "eps": eps,
                    "n": n,
                    "value": total / n if n else float("nan"),
                    "steps": self.steps,
                    "step_size": self.relative_step_size * eps,
                    "checkpoint": str(self.checkpoint),
                }
            )
        return records

    @override
    def table(self, records: list[dict]) -> Table:
        table = Table(title=f"Local linearity error (PGD-{self.steps})")
        for column in ("eps", "eps x 255", "n", "error"):
            table.add_column(column, justify="right")
        for record in records:
            eps = record["eps"]
            table.add_row(
                f"{eps:.4f}", f"{255 * eps:g}", str(record["n"]), f"{record['value']:.4g}"
            )
        return table

    @override
    def draw(self, directory: Path) -> None:
        if self.plots:
            plot_local_linearity([directory / "results.json"], directory / "local_linearity.png")

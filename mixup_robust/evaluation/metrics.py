"""The metrics of one (defense, attack) cell: accuracy, count, detection AUROC, calibration."""

import contextlib
from collections.abc import Iterator

import torch
from torchmetrics import MetricCollection, SumMetric
from torchmetrics.classification import BinaryAUROC, MulticlassAccuracy, MulticlassCalibrationError

# Detection scores lie in [-1, 1]; a fixed grid of thresholds keeps the AUROC's memory bounded
# (sum states only, exact under DDP) with a resolution of 0.001.
AUROC_THRESHOLDS = 2001
ECE_BINS = 15


def cell_metrics(num_classes: int, clean: bool) -> MetricCollection:
    """Accuracy and n always; ECE on clean inputs, detection AUROC under attack."""
    metrics = {"accuracy": MulticlassAccuracy(num_classes, average="micro"), "n": SumMetric()}
    if clean:
        metrics["ece"] = MulticlassCalibrationError(num_classes, n_bins=ECE_BINS, norm="l1")
    else:
        thresholds = torch.linspace(-1, 1, AUROC_THRESHOLDS)
        metrics["auroc"] = BinaryAUROC(thresholds=thresholds)
    return MetricCollection(metrics, compute_groups=False)


def detection_scores(
    plain_log_probs: torch.Tensor, defense_log_probs: torch.Tensor, bare: bool
) -> torch.Tensor:
    """How adversarial each input looks; higher means more likely adversarial.

    For a defense: the drop of the plainly predicted class's probability from the bare
    classifier to the defense's output (MI-PL's detection metric, MI paper Sec. 3.2.1). For
    the bare classifier, which has nothing to compare with: one minus its confidence, the
    baseline of the MI paper's Figure 3a.
    """
    plain = plain_log_probs.exp()
    predicted = plain.argmax(dim=1, keepdim=True)
    confidence = plain.gather(1, predicted).squeeze(1)
    if bare:
        return 1 - confidence
    return confidence - defense_log_probs.exp().gather(1, predicted).squeeze(1)


def update_cell(
    metrics: MetricCollection,
    log_probs: torch.Tensor,
    labels: torch.Tensor,
    detection: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> None:
    """Adds one batch: predictions, counts, and calibration or detection scores.

    Args:
        detection: detection scores of the clean inputs (negatives) and of the adversarial
            inputs (positives) that take part in the AUROC.
    """
    metrics["accuracy"].update(log_probs.argmax(dim=1), labels)
    metrics["n"].update(torch.tensor(float(len(labels)), device=labels.device))
    if "ece" in metrics:
        metrics["ece"].update(log_probs.exp(), labels)
    if "auroc" in metrics and detection is not None:
        negatives, positives = detection
        both = torch.cat([negatives, positives]).clamp(-1, 1)
        is_adversarial = torch.cat([torch.zeros_like(negatives), torch.ones_like(positives)])
        with _integer_bincount_allowed():
            metrics["auroc"].update(both, is_adversarial.long())


@contextlib.contextmanager
def _integer_bincount_allowed() -> Iterator[None]:
    """Lets torchmetrics use torch.bincount while deterministic algorithms are on.

    Under deterministic mode torchmetrics replaces the bincount of its thresholded ROC by a
    comparison with a (samples x thresholds) x (4 x thresholds) mesh: gigabytes for one batch.
    A bincount of integers gives the same counts in any order, so nothing is lost.
    """
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(False)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)

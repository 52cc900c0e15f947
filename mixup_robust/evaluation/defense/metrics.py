"""The metrics of one (defense, attack) cell: accuracy, count, detection AUROC, calibration."""

import torch
from torchmetrics import MetricCollection, SumMetric
from torchmetrics.classification import BinaryAUROC, MulticlassAccuracy, MulticlassCalibrationError

ECE_BINS = 15


def cell_metrics(num_classes: int, clean: bool) -> MetricCollection:
    """Accuracy and n always; ECE on clean inputs, detection AUROC under attack.

    The AUROC is exact: it keeps every score (two floats per test point and cell; under DDP
    torchmetrics gathers them from all ranks, and the exact sampler gives each sample to one
    rank). A fixed grid of thresholds would bin concentrated scores (e.g. one minus the
    confidence of a confident model) and pull the AUROC toward 0.5.
    """
    metrics = {"accuracy": MulticlassAccuracy(num_classes, average="micro"), "n": SumMetric()}
    if clean:
        metrics["ece"] = MulticlassCalibrationError(num_classes, n_bins=ECE_BINS, norm="l1")
    else:
        metrics["auroc"] = BinaryAUROC(thresholds=None)
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
        metrics: the cell's metrics, from `cell_metrics`.
        log_probs: (B, num_classes) log-probabilities the defense gives the batch.
        labels: (B,) true classes.
        detection: detection scores of the clean inputs (negatives) and of the adversarial
            inputs (positives) that take part in the AUROC.
    """
    metrics["accuracy"].update(log_probs.argmax(dim=1), labels)
    metrics["n"].update(torch.tensor(float(len(labels)), device=labels.device))
    if "ece" in metrics:
        metrics["ece"].update(log_probs.exp(), labels)
    if "auroc" in metrics and detection is not None:
        negatives, positives = detection
        # Scores lie in [-1, 1]; mapped monotonically into [0, 1] (in float64, so no two
        # scores merge), where torchmetrics takes them as they are (it would apply a
        # sigmoid to values outside [0, 1]).
        both = (torch.cat([negatives, positives]).double().clamp(-1, 1) + 1) / 2
        is_adversarial = torch.cat([torch.zeros_like(negatives), torch.ones_like(positives)])
        metrics["auroc"].update(both, is_adversarial.long())


def update_cell_from_samples(
    metrics: MetricCollection,
    predictions: torch.Tensor,
    confidences: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    detection: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> None:
    """`update_cell` from stored per-sample values instead of the log-probabilities.

    The calibration error needs only each input's top probability and whether its class is
    right, so a row holding the confidence at the prediction gives the metric what the full
    probabilities gave it; accuracy, count and AUROC take the same tensors as `update_cell`.

    Args:
        metrics: the cell's metrics, from `cell_metrics`.
        predictions: (B,) predicted classes.
        confidences: (B,) float32 probability of each prediction.
        labels: (B,) true classes.
        num_classes: classes of the data.
        detection: as in `update_cell`.
    """
    metrics["accuracy"].update(predictions, labels)
    metrics["n"].update(torch.tensor(float(len(labels)), device=labels.device))
    if "ece" in metrics:
        probabilities = torch.zeros(len(labels), num_classes, device=labels.device)
        probabilities.scatter_(1, predictions[:, None], confidences[:, None])
        metrics["ece"].update(probabilities, labels)
    if "auroc" in metrics and detection is not None:
        negatives, positives = detection
        both = (torch.cat([negatives, positives]).double().clamp(-1, 1) + 1) / 2
        is_adversarial = torch.cat([torch.zeros_like(negatives), torch.ones_like(positives)])
        metrics["auroc"].update(both, is_adversarial.long())

"""The MI paper's baselines as its official code runs them, and the exact detection AUROC."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from mixup_robust.defenses import GaussianNoise, RandomCropPad
from mixup_robust.evaluation.defense.metrics import cell_metrics, update_cell


def _net(shape=(3, 32, 32)) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), 4)).eval()


def _keys(n: int, execution: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.arange(n), torch.full((n,), execution)


def test_gaussian_noise_in_symmetric_units_unclipped_is_the_official_noise():
    grey = torch.full((20, 3, 32, 32), 0.5)
    paper = GaussianNoise(0.04, sigma_unit="symmetric", clip=False).bind(_net())
    project = GaussianNoise(0.04).bind(_net())
    keys = _keys(20, execution=2)
    paper_noise = paper.transform(grey, *keys) - grey
    # sigma 0.04 on [-1, 1] images is 0.02 in [0, 1] pixels: half the project's noise.
    assert paper_noise.std().item() == pytest.approx(0.02, rel=0.02)
    assert torch.allclose(2 * paper_noise, project.transform(grey, *keys) - grey, atol=1e-6)
    white = torch.ones(2, 3, 32, 32)
    assert paper.transform(white, *_keys(2)).max() > 1  # not clipped
    assert GaussianNoise(0.04, clip=False).bind(_net()).transform(white, *_keys(2)).max() > 1
    assert paper.name == "Gaussian noise 0.04 [-1,1] units, unclipped"
    with pytest.raises(ValueError, match="sigma_unit"):
        GaussianNoise(0.04, sigma_unit="normalized")


def test_crop_pad_cuts_a_window_and_zero_pads_it_without_resizing():
    defense = RandomCropPad(16, 24, n_executions=3).bind(_net())
    images = torch.rand(40, 3, 32, 32, generator=torch.Generator().manual_seed(0)) + 0.01
    sample, execution = _keys(40, execution=1)
    output = defense.transform(images, sample, execution)
    params = defense.params(sample, execution, 32, 32)
    sizes = params["size"]
    assert sizes.min() >= 16 and sizes.max() <= 24 and len(torch.unique(sizes)) > 3
    for m in range(40):
        s = int(sizes[m])
        names = ("crop_top", "crop_left", "pad_top", "pad_left")
        ct, cl, pt, pl = (int(params[name][m]) for name in names)
        assert 0 <= ct <= 32 - s and 0 <= pl <= 32 - s
        window = images[m, :, ct : ct + s, cl : cl + s]
        assert torch.equal(output[m, :, pt : pt + s, pl : pl + s], window)  # pixels, not resized
        assert (output[m] != 0).sum() == 3 * s * s  # black everywhere else
    # Keyed: the same sample and execution give the same transform in any batch.
    assert torch.equal(defense.transform(images[5:7], sample[5:7], execution[5:7]), output[5:7])
    with pytest.raises(ValueError, match="exceeds"):
        RandomCropPad(20, 40).bind(_net()).transform(images[:1], *_keys(1))


def _concentrated_scores(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """'1 - confidence' of a confident model: clean and adversarial scores within 1e-3 of 0."""
    generator = torch.Generator().manual_seed(seed)
    clean = torch.rand(500, generator=generator).pow(3) * 1e-3
    adversarial = torch.rand(500, generator=generator).pow(5) * 1e-3
    return clean, adversarial


def _mann_whitney(negatives: np.ndarray, positives: np.ndarray) -> float:
    """P(positive > negative) + P(tie) / 2 over all pairs: the AUROC by counting."""
    greater = (positives[:, None] > negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    return (greater + ties / 2) / (len(positives) * len(negatives))


def test_detection_auroc_is_exact_on_concentrated_scores():
    clean, adversarial = _concentrated_scores()
    metrics = cell_metrics(num_classes=4, clean=False)
    labels = torch.zeros(500, dtype=torch.long)
    log_probs = torch.log_softmax(torch.zeros(500, 4), dim=1)
    for part in range(5):  # several batches, as in the test loop
        rows = slice(100 * part, 100 * (part + 1))
        update_cell(metrics, log_probs[rows], labels[rows], (clean[rows], adversarial[rows]))
    auroc = metrics["auroc"].compute().item()
    scores = torch.cat([clean, adversarial]).double().numpy()
    truth = np.r_[np.zeros(500), np.ones(500)]
    assert auroc == pytest.approx(roc_auc_score(truth, scores), abs=1e-6)
    assert auroc == pytest.approx(_mann_whitney(clean.numpy(), adversarial.numpy()), abs=1e-6)
    assert auroc < 0.45  # worse than random, the MI paper's Fig. 3a baseline; binning hid it


def test_detection_auroc_counts_ties_as_half():
    metrics = cell_metrics(num_classes=2, clean=False)
    negatives = torch.tensor([0.2, 0.2, -0.5])
    positives = torch.tensor([0.2, 0.9])
    update_cell(metrics, torch.zeros(2, 2), torch.tensor([0, 1]), (negatives, positives))
    # 0.2 vs (0.2, 0.2, -0.5): 0.5 + 0.5 + 1; 0.9 beats all three: 3 -> 5 of 6.
    assert metrics["auroc"].compute().item() == pytest.approx(5 / 6, abs=1e-6)

"""Detection scores, AUROC, calibration, sweeps and plots of the evaluation."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from mixup_robust.defenses import MixupInference, NoDefense
from mixup_robust.evaluation import ParameterSweep
from mixup_robust.evaluation.defense.figures import draw_all
from mixup_robust.evaluation.defense.metrics import cell_metrics, detection_scores, update_cell


def test_auroc_equals_a_hand_computation():
    metrics = cell_metrics(num_classes=3, clean=False)
    negatives = torch.tensor([0.1, 0.4, -0.2])
    positives = torch.tensor([0.35, 0.8])
    log_probs = torch.log_softmax(torch.randn(2, 3), dim=1)
    update_cell(metrics, log_probs, torch.tensor([0, 1]), (negatives, positives))
    # Pairs (positive > negative): 0.35 beats 0.1 and -0.2; 0.8 beats all three -> 5 of 6.
    assert metrics["auroc"].compute().item() == pytest.approx(5 / 6, abs=1e-6)
    assert metrics["n"].compute().item() == 2


def test_ece_of_a_perfectly_confident_right_classifier_is_zero_and_wrong_is_one():
    labels = torch.tensor([0, 1, 2, 1])
    right = cell_metrics(num_classes=3, clean=True)
    update_cell(right, torch.log(F.one_hot(labels, 3).float().clamp_min(1e-12)), labels)
    assert right["ece"].compute().item() == pytest.approx(0.0, abs=1e-5)
    wrong = cell_metrics(num_classes=3, clean=True)
    update_cell(wrong, torch.log(F.one_hot((labels + 1) % 3, 3).float().clamp_min(1e-12)), labels)
    assert wrong["ece"].compute().item() == pytest.approx(1.0, abs=1e-5)
    assert wrong["accuracy"].compute().item() == 0.0


def test_detection_scores_are_the_probability_drop_or_one_minus_confidence():
    plain = torch.log(torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]))
    defended = torch.log(torch.tensor([[0.4, 0.5, 0.1], [0.1, 0.0 + 1e-9, 0.9 - 1e-9]]))
    drop = detection_scores(plain, defended, bare=False)
    assert torch.allclose(drop, torch.tensor([0.3, -0.1]), atol=1e-6)
    assert torch.allclose(detection_scores(plain, plain, bare=True), torch.tensor([0.3, 0.2]))


def test_sweep_expands_copies_with_the_parameter_set():
    base = MixupInference(partner_label="other", mixup_ratio=0.5)
    expanded = ParameterSweep(base, "mixup_ratio", [0.3, 0.6]).expand()
    assert [d.mixup_ratio for d, _ in expanded] == [0.3, 0.6] and base.mixup_ratio == 0.5
    assert [d.name for d, _ in expanded] == ["MI-OL mixup_ratio=0.3", "MI-OL mixup_ratio=0.6"]
    assert expanded[1][1] == {"sweep": "MI-OL", "parameter": "mixup_ratio", "value": 0.6}
    with pytest.raises(ValueError, match="no parameter 'sigma'"):
        ParameterSweep(NoDefense(), "sigma", [0.1])
    with pytest.raises(ValueError, match="at least one value"):
        ParameterSweep(base, "mixup_ratio", [])


def _record(defense, attack, accuracy, **extra):
    return {"defense": defense, "attack": attack, "accuracy": accuracy, **extra}


def test_plots_are_drawn_from_results_json(tmp_path):
    records = [_record("none", "clean", 0.9), _record("none", "PGD-10", 0.1)]
    for value, clean, robust in ((0.4, 0.5, 0.4), (0.6, 0.8, 0.3)):
        fields = {"sweep": "MI-OL", "parameter": "mixup_ratio", "value": value}
        records += [
            _record(f"MI-OL mixup_ratio={value}", "clean", clean, **fields),
            _record(f"MI-OL mixup_ratio={value}", "PGD-10", robust, **fields),
        ]
    (tmp_path / "results.json").write_text(json.dumps(records))
    drawn = draw_all(tmp_path / "results.json")
    assert sorted(p.name for p in drawn) == ["accuracy_vs_parameter.png", "tradeoff.png"]
    for path in drawn:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    (tmp_path / "plain.json").write_text(json.dumps(records[:2]))
    assert [p.name for p in draw_all(tmp_path / "plain.json", tmp_path / "b")] == ["tradeoff.png"]
    assert not math.isnan(records[0]["accuracy"])


def test_adaptive_samples_plot_needs_adaptive_records(tmp_path):
    records = [_record("none", "PGD-10", 0.05, threat_model="oblivious", steps=10)]
    for n, accuracy in ((1, 0.3), (10, 0.2)):
        records.append(
            _record("MI-OL", f"A{n}", accuracy, threat_model="adaptive", steps=10, n_samples=n)
        )
    (tmp_path / "results.json").write_text(json.dumps(records))
    names = sorted(p.name for p in draw_all(tmp_path / "results.json"))
    assert names == ["accuracy_vs_adaptive_samples.png", "tradeoff.png"]
    (tmp_path / "oblivious.json").write_text(json.dumps(records[:1]))
    out = tmp_path / "only"
    assert [p.name for p in draw_all(tmp_path / "oblivious.json", out)] == ["tradeoff.png"]


def test_metrics_from_stored_samples_equal_the_live_update_bit_for_bit():
    """The store's replay (prediction, float32 confidence, detection) gives what the full
    log-probabilities gave the metrics, to the last bit, over several batches."""
    from mixup_robust.evaluation.defense.metrics import update_cell_from_samples
    from mixup_robust.evaluation.store import SAMPLE_FIELDS, sample_rows

    field = {name: number for number, name in enumerate(SAMPLE_FIELDS)}

    generator = torch.Generator().manual_seed(19)
    for clean in (True, False):
        live, replayed = cell_metrics(10, clean), cell_metrics(10, clean)
        for _ in range(4):
            log_probs = torch.log_softmax(3 * torch.randn(50, 10, generator=generator), dim=1)
            labels = torch.randint(0, 10, (50,), generator=generator)
            scores = torch.rand(2, 50, generator=generator) * 2 - 1
            detection = None if clean else (scores[0][:40], scores[1][10:])
            update_cell(live, log_probs, labels, detection)
            # through the store's rows: Python floats, back to float32 tensors
            rows = sample_rows(
                50, prediction=log_probs.argmax(1), confidence=log_probs.exp().max(1).values,
                label=labels, detection=scores[0],
            )  # fmt: skip
            confidence = torch.tensor(
                [row[field["confidence"]] for row in rows], dtype=torch.float32
            )
            prediction = torch.tensor([row[field["prediction"]] for row in rows])
            stored = (
                None
                if clean
                else (
                    torch.tensor([row[field["detection"]] for row in rows], dtype=torch.float32)[
                        :40
                    ],
                    scores[1][10:],
                )
            )
            update_cell_from_samples(replayed, prediction, confidence, labels, 10, stored)
        for name, value in live.compute().items():
            assert torch.equal(value, replayed.compute()[name]), name

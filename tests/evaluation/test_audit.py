"""DefenseAudit end to end on the digits: worst case, cost saving, statistics, red flags."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from mixup_robust.defenses import Defense
from tests.helpers.cli import run_cli

EPS, STEP = "32/255", "8/255"


class QuantizedInput(Defense):
    """A gradient-masking defense: rounds pixels to 8 levels (zero gradient) before the net.

    Not a defense anyone should use: the audit must flag it.
    """

    randomized = False

    def default_name(self) -> str:
        return "quantized"

    def defend(self, images: torch.Tensor, sample_index: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.classifier(torch.round(images * 8) / 8), dim=1)


def attack(kind: str, **init_args) -> dict:
    return {"class_path": f"mixup_robust.attacks.{kind}", "init_args": init_args}


def mi_ol(executions: int) -> dict:
    return {
        "class_path": "mixup_robust.defenses.MixupInference",
        "init_args": {"partner_label": "other", "n_executions": executions},
    }


def run_audit(tmp: Path, checkpoint: Path, subset: int = 60, **model_args) -> list[dict]:
    """Runs DefenseAudit through the CLI with a config written to `tmp`; returns the records."""
    config = {
        "trainer": {"accelerator": "cpu", "devices": 1, "default_root_dir": str(tmp / "logs")},
        "model": {
            "class_path": "mixup_robust.evaluation.DefenseAudit",
            "init_args": {"checkpoint": str(checkpoint), "output_dir": str(tmp / "out"),
                          **model_args},
        },
        "data": {
            "class_path": "mixup_robust.data.DigitsDataModule",
            "init_args": {"eval_batch_size": 32, "test_subset_size": subset,
                          "pool_size_per_class": 20},
        },
    }  # fmt: skip
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "audit.yaml").write_text(yaml.safe_dump(config))
    run_cli("test", "--config", tmp / "audit.yaml")
    return json.loads((tmp / "out" / "results.json").read_text())


def by_cell(records: list[dict]) -> dict[tuple[str, str], dict]:
    return {(r["defense"], r["attack"]): r for r in records}


@pytest.fixture(scope="module")
def masked_audit(digits_checkpoint, tmp_path_factory) -> tuple[Path, list[dict]]:
    tmp = tmp_path_factory.mktemp("audit")
    records = run_audit(
        tmp, digits_checkpoint, trials=2, full_ladder_fraction=0.5,
        defenses=[mi_ol(6), {"class_path": f"{__name__}.QuantizedInput"}],
        rungs=[attack("PGD", eps=EPS, step_size=STEP, steps=5),
               attack("EOTPGD", eps=EPS, step_size=STEP, steps=5, n_samples=1),
               attack("EOTPGD", eps=EPS, step_size=STEP, steps=5, n_samples=3),
               attack("Square", eps=EPS, n_queries=100)],
        unbounded=attack("EOTPGD", eps=1.0, step_size=0.1, steps=10, n_samples=2,
                         random_start=False, name="eps-1 probe"),
    )  # fmt: skip
    return tmp / "out", records


def test_worst_case_is_per_sample_over_the_ladder_with_intervals(masked_audit):
    _, records = masked_audit
    cells = by_cell(records)
    rungs = ["PGD-5", "EOT-PGD-5 (N_A=1)", "EOT-PGD-5 (N_A=3)", "Square-100"]
    for defense in ("none", "MI-OL", "quantized"):
        worst, clean = cells[(defense, "worst case")], cells[(defense, "clean")]
        assert worst["n"] == clean["n"] == 60
        assert worst["ci_low"] <= worst["accuracy"] <= worst["ci_high"]
        cumulative = [clean["accuracy"]] + [cells[(defense, r)]["cumulative_accuracy"]
                                            for r in rungs]  # fmt: skip
        assert cumulative == sorted(cumulative, reverse=True)  # samples only ever fall
        assert worst["accuracy"] == pytest.approx(cumulative[-1])
        assert worst["strongest_rung"] in rungs
        # Own accuracies come from the full-ladder samples (about half of 60).
        assert 15 < cells[(defense, "PGD-5")]["n"] < 45
    assert cells[("none", "worst case")]["accuracy"] < cells[("none", "clean")]["accuracy"]
    # Randomized defenses are repeated over seeds; the bare classifier and the test defense not.
    assert cells[("MI-OL", "worst case")]["trials"] == 2
    assert len(cells[("MI-OL", "worst case")]["accuracy_per_trial"]) == 2
    assert cells[("quantized", "worst case")]["trials"] == cells[("none", "clean")]["trials"] == 1
    assert cells[("none", "worst case")]["versus_none"] == "baseline"
    assert cells[("MI-OL", "worst case")]["versus_none"] in ("better", "worse", "within noise")


def test_gradient_masking_defense_is_flagged_and_the_bare_classifier_is_not(masked_audit):
    _, records = masked_audit
    cells = by_cell(records)
    flags = " | ".join(cells[("quantized", "worst case")]["red_flags"])
    assert "unbounded attack leaves accuracy" in flags
    assert "loss does not rise [EOT-PGD-5 (N_A=1)]" in flags
    assert "attack beats white-box" in flags  # transfer or Square beats the stuck EOT-PGD
    assert cells[("quantized", "EOT-PGD-5 (N_A=1)")]["flags"]
    assert cells[("none", "worst case")]["red_flags"] == []
    assert cells[("quantized", "eps-1 probe")]["accuracy"] > 0.5
    assert cells[("none", "eps-1 probe")]["accuracy"] < 0.05


def test_report_files(masked_audit):
    output, records = masked_audit
    markdown = (output / "audit.md").read_text()
    for name in ("PGD-5", "EOT-PGD-5 (N_A=3)", "Square-100", "eps-1 probe", "quantized"):
        assert name in markdown
    assert "n_queries = 100" in markdown and "eps = 0.1255 (= 32/255)" in markdown
    assert "| defense | clean | worst case |" in markdown
    assert (output / "audit.png").stat().st_size > 10_000
    assert len((output / "results.csv").read_text().splitlines()) == len(records) + 1


def deterministic_ladder() -> list[dict]:
    return [attack("PGD", eps=EPS, step_size=STEP, steps=5, random_start=False),
            attack("EOTPGD", eps=EPS, step_size=STEP, steps=5, n_samples=1, random_start=False),
            attack("EOTPGD", eps=EPS, step_size=STEP, steps=5, n_samples=3,
                   random_start=False)]  # fmt: skip


def test_skipping_broken_samples_saves_work_and_changes_no_number(digits_checkpoint, tmp_path):
    common = {"trials": 1, "check_unbounded": False, "defenses": [mi_ol(6)],
              "rungs": deterministic_ladder()}  # fmt: skip
    skip = by_cell(run_audit(tmp_path / "skip", digits_checkpoint, full_ladder_fraction=0.0,
                             **common))  # fmt: skip
    full = by_cell(run_audit(tmp_path / "full", digits_checkpoint, full_ladder_fraction=1.0,
                             **common))  # fmt: skip
    attacked = {"skip": 0, "full": 0}
    for key, record in skip.items():
        if "cumulative_accuracy" in record:
            assert record["cumulative_accuracy"] == full[key]["cumulative_accuracy"]
            attacked["skip"] += record["samples_attacked"]
            attacked["full"] += full[key]["samples_attacked"]
    for defense in ("none", "MI-OL"):
        assert (
            skip[(defense, "worst case")]["accuracy"] == full[(defense, "worst case")]["accuracy"]
        )
        # With every rung on every sample, the worst case is at most each rung's own accuracy.
        own = [r["accuracy"] for (d, _), r in full.items() if d == defense and "kind" in r
               and r["kind"] == "white-box"]  # fmt: skip
        assert full[(defense, "worst case")]["accuracy"] <= min(own)
    assert attacked["full"] == 2 * 3 * 60
    assert attacked["skip"] < 0.6 * attacked["full"]


def test_full_ladder_accuracies_equal_the_evaluation_of_the_same_attacks(
    digits_checkpoint, tmp_path
):
    rungs = deterministic_ladder()
    audit = by_cell(run_audit(tmp_path / "audit", digits_checkpoint, trials=1,
                              check_unbounded=False, full_ladder_fraction=1.0,
                              defenses=[mi_ol(6)], rungs=rungs))  # fmt: skip
    for rung in rungs[1:]:
        rung["init_args"]["threat_model"] = "adaptive"
    rungs[2]["init_args"].pop("threat_model")  # EOTPGD has no such argument
    rungs[1]["init_args"].pop("threat_model")
    config = tmp_path / "evaluate.yaml"
    config.write_text(yaml.safe_dump({
        "trainer": {"accelerator": "cpu", "devices": 1},
        "model": {"class_path": "mixup_robust.evaluation.DefenseEvaluation",
                  "init_args": {"checkpoint": str(digits_checkpoint), "plots": False,
                                "output_dir": str(tmp_path / "evaluation"),
                                "defenses": [mi_ol(6)], "attacks": rungs}},
        "data": {"class_path": "mixup_robust.data.DigitsDataModule",
                 "init_args": {"eval_batch_size": 32, "test_subset_size": 60,
                               "pool_size_per_class": 20}},
    }))  # fmt: skip
    run_cli("test", "--config", config, "--trainer.default_root_dir", tmp_path / "logs")
    evaluation = json.loads((tmp_path / "evaluation" / "results.json").read_text())
    for record in evaluation:
        assert audit[(record["defense"], record["attack"])]["accuracy"] == pytest.approx(
            record["accuracy"]
        )

"""The defense evaluation end to end through the CLI, its files and its errors."""

from pathlib import Path

import pytest
import torch
import yaml

from mixup_robust.attacks import FGSM, PGD
from mixup_robust.defenses import MixupInference
from mixup_robust.evaluation import DefenseAudit, DefenseEvaluation, load_classifier
from tests.helpers.cli import CONF, measure_digits

EVALUATE = CONF / "evaluate.yaml"


def evaluate(checkpoint: Path, output_dir: Path, *extra: str) -> list[dict]:
    return measure_digits(
        EVALUATE, checkpoint, output_dir, "--data.init_args.test_subset_size", 120, *extra
    )


@pytest.fixture(scope="module")
def results(digits_checkpoint, tmp_path_factory) -> tuple[Path, list[dict]]:
    output = tmp_path_factory.mktemp("evaluation") / "results"
    return output, evaluate(digits_checkpoint, output)


def test_every_defense_is_scored_clean_and_under_every_attack(results):
    _, records = results
    pairs = {(r["defense"], r["attack"]) for r in records}
    attacks = ("clean", "PGD-10", "PGD-20 (eps 48/255)")
    assert pairs == {(d, a) for d in ("none", "MI-PL", "MI-OL") for a in attacks}
    for record in records:
        assert record["n"] == 120 and 0 <= record["accuracy"] <= 1
        assert record["threat_model"] == ("none" if record["attack"] == "clean" else "oblivious")
    accuracy = {(r["defense"], r["attack"]): r["accuracy"] for r in records}
    assert accuracy[("none", "PGD-10")] < accuracy[("none", "clean")]
    pgd = next(r for r in records if r["attack"] == "PGD-10")
    assert pgd["eps"] == pytest.approx(32 / 255) and pgd["steps"] == 10
    for record in records:  # ECE on clean inputs, detection AUROC under attack
        field = "ece" if record["attack"] == "clean" else "auroc"
        assert 0 <= record[field] <= 1 and ({"ece", "auroc"} - {field}).isdisjoint(record)


def test_csv_matches_json_and_the_config_is_kept(results):
    output, records = results
    assert (output / "tradeoff.png").stat().st_size > 5000
    config = yaml.safe_load((output / "config.yaml").read_text())
    assert config["model"]["class_path"] == "mixup_robust.evaluation.DefenseEvaluation"
    assert config["data"]["init_args"]["test_subset_size"] == 120
    lines = (output / "results.csv").read_text().splitlines()
    assert lines[0].startswith("defense,attack,threat_model,n,accuracy")
    assert len(lines) == len(records) + 1


def test_same_config_gives_the_same_numbers(results, digits_checkpoint, tmp_path):
    _, records = results
    again = evaluate(digits_checkpoint, tmp_path / "again")
    assert [r["accuracy"] for r in again] == [r["accuracy"] for r in records]


def test_an_earlier_run_is_never_overwritten(results, digits_checkpoint):
    output, _ = results
    before = (output / "results.json").read_bytes()
    with pytest.raises(FileExistsError, match="earlier run"):
        evaluate(digits_checkpoint, output)
    assert (output / "results.json").read_bytes() == before


def test_missing_and_wrong_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="Train one first"):
        load_classifier(str(tmp_path / "absent.ckpt"))
    (tmp_path / "garbage.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a checkpoint"):
        load_classifier(str(tmp_path / "garbage.ckpt"))
    torch.save({"state_dict": {"encoder.weight": torch.zeros(1)}}, tmp_path / "vae.ckpt")
    with pytest.raises(ValueError, match="not a mixup_robust classifier"):
        load_classifier(str(tmp_path / "vae.ckpt"))


def test_checkpoint_of_other_data_is_refused(digits_checkpoint, tmp_path):
    classifier, hparams = load_classifier(str(digits_checkpoint))
    assert hparams["num_classes"] == 10 and classifier(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    evaluation = DefenseEvaluation(str(digits_checkpoint), num_classes=100, image_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="trained with num_classes=10"):
        evaluation.check_matches_data(hparams)
    evaluation = DefenseEvaluation(str(digits_checkpoint), num_classes=10, image_shape=(3, 8, 8))
    with pytest.raises(ValueError, match="image_shape"):
        evaluation.check_matches_data(hparams)


def test_two_defenses_or_attacks_of_one_name_are_refused_before_anything_loads():
    """Results are keyed by name: a second MI-OL would silently overwrite the first's cells."""
    mi_ol = {"partner_label": "other", "mixup_ratio": 0.5}
    with pytest.raises(ValueError, match=r"Two defenses share the name\(s\) \['MI-OL'\]"):
        DefenseEvaluation("never_read.ckpt", defenses=[MixupInference(**mi_ol)] * 2, attacks=[])
    named = [PGD(eps="8/255", steps=1, name="same"), FGSM(eps="4/255", name="same")]
    with pytest.raises(ValueError, match=r"Two attacks share the name\(s\) \['same'\]"):
        DefenseEvaluation("never_read.ckpt", attacks=named)
    with pytest.raises(ValueError, match=r"Two rungs share the name\(s\) \['same'\]"):
        DefenseAudit("never_read.ckpt", rungs=named)
    renamed = [MixupInference(**mi_ol), MixupInference(**mi_ol, name="MI-OL again")]
    assert len(DefenseEvaluation("never_read.ckpt", defenses=renamed, attacks=[]).defenses) == 3

"""Every shipped config parses, and the full quickstart evaluation runs end to end."""

import json

import pytest

from tests.conftest import REPO, run_cli

CONFIGS = REPO / "configs"
EVALUATIONS = sorted(CONFIGS.glob("eval/*.yaml")) + sorted(CONFIGS.glob("quickstart/evaluate*"))
TRAININGS = (
    sorted(CONFIGS.glob("cifar10/*.yaml"))
    + sorted(CONFIGS.glob("cifar100/*.yaml"))
    + [path for path in sorted(CONFIGS.glob("quickstart/*.yaml")) if "evaluate" not in path.name]
)


def parses(subcommand: str, *configs) -> None:
    arguments = [subcommand]
    for config in configs:
        arguments += ["--config", config]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(*arguments, "--print_config")
    assert exit_info.value.code in (0, None)


@pytest.mark.parametrize("config", EVALUATIONS, ids=lambda path: path.name)
def test_evaluation_configs_parse(config):
    parses("test", config)


@pytest.mark.parametrize("config", TRAININGS, ids=lambda path: path.name)
def test_training_configs_parse(config):
    parses("fit", config)


@pytest.mark.parametrize("data", sorted(CONFIGS.glob("data/*.yaml")), ids=lambda p: p.name)
def test_data_configs_combine_with_a_method(data):
    parses("fit", CONFIGS / "cifar10" / "mixup.yaml", data)


@pytest.mark.slow
def test_full_quickstart_evaluation_scores_every_defense(digits_checkpoint, tmp_path):
    output = tmp_path / "results"
    run_cli(
        "test", "--config", CONFIGS / "quickstart" / "evaluate_full.yaml",
        "--model.init_args.checkpoint", digits_checkpoint,
        "--model.init_args.output_dir", output,
        "--trainer.default_root_dir", tmp_path / "logs",
        "--data.init_args.test_subset_size", 40,
    )  # fmt: skip
    records = json.loads((output / "results.json").read_text())
    defenses = {r["defense"] for r in records}
    assert {
        "none",
        "MI-PL",
        "MI-OL",
        "MI-Combined",
        "Gaussian noise 0.1",
        "Rotation 30",
    } <= defenses
    assert {"Xie et al. 2018", "Guo et al. 2018", "MI-OL mixup_ratio=0.3"} <= defenses
    attacks = {r["attack"] for r in records}
    assert attacks == {"clean", "PGD-10", "PGD-10 (targeted, random)", "PGD-20 (eps 48/255)"}
    assert all(r["n"] == 40 for r in records)
    assert (output / "tradeoff.png").exists() and (output / "accuracy_vs_parameter.png").exists()

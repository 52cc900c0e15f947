"""Every shipped config parses, and the full quickstart evaluation runs end to end.

Also: the blocks that configs include or name (configs/attacks, defenses, recipes, data) are
each used and found; no config names a default checkpoint; CIFAR-100 is the CIFAR-10 config
with the CIFAR-100 block stacked after it.
"""

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.helpers.cli import REPO, resolved_command, resolved_config, run_cli
from tests.helpers.configs import BLOCK_FOLDERS, CIFAR100_METHODS, command

CONFIGS = REPO / "configs"
QUICKSTART_EVALUATIONS = ("evaluate", "audit")
EVALUATIONS = sorted(CONFIGS.glob("eval/*.yaml")) + [
    path for path in sorted(CONFIGS.glob("quickstart/*.yaml"))
    if path.stem.startswith(QUICKSTART_EVALUATIONS)
]  # fmt: skip
TRAININGS = sorted(CONFIGS.glob("cifar10/*.yaml")) + [
    path for path in sorted(CONFIGS.glob("quickstart/*.yaml"))
    if not path.stem.startswith(QUICKSTART_EVALUATIONS)
]  # fmt: skip


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


# ------------------------------------------------ data blocks come from configs/data/
SHIPPED = sorted(path for path in CONFIGS.glob("*/*.yaml") if path.parent.name not in BLOCK_FOLDERS)


def subcommand_of(config: Path) -> str:
    evaluating = config.parent.name == "eval" or config.stem.startswith(QUICKSTART_EVALUATIONS)
    return "test" if evaluating else "fit"


@pytest.fixture(scope="module")
def moved_configs(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A copy of configs/ whose every data set fragment points `root` somewhere new.

    Returns the copy and, per data class, the root its fragment now names. Fragments that
    include another fragment (cifar10_eval.yaml) are left alone: they follow their base.
    """
    copy = tmp_path_factory.mktemp("configs") / "configs"
    shutil.copytree(CONFIGS, copy)
    moved_roots = {}
    for fragment in sorted((copy / "data").glob("*.yaml")):
        content = yaml.safe_load(fragment.read_text())
        if "data" not in content:
            continue
        class_path = content["data"]["class_path"]
        assert class_path not in moved_roots, f"two fragments of {class_path}"
        moved_roots[class_path] = content["data"]["init_args"]["root"] = f"moved/{fragment.stem}"
        fragment.write_text(yaml.safe_dump(content))
    return copy, moved_roots


@pytest.mark.parametrize("config", SHIPPED, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_a_data_set_is_changed_in_one_place(config, moved_configs):
    """Every config of a data set that has a fragment reads its block from the fragment.

    Changing the fragment's root changes the config's root and nothing else (its own values,
    e.g. the MI paper's batch 64 or a test subset, stay); a pasted copy of a data block would
    keep the old root.
    """
    copy, moved_roots = moved_configs
    subcommand = subcommand_of(config)
    shipped = resolved_config(subcommand, config)
    moved = resolved_config(subcommand, copy / config.relative_to(CONFIGS))
    class_path = shipped["data"]["class_path"]
    if class_path not in moved_roots:  # a data set of one config only (CIFAR-10-C)
        assert moved == shipped
        return
    assert moved["data"]["init_args"].pop("root") == moved_roots[class_path]
    shipped["data"]["init_args"].pop("root")
    assert moved == shipped


# ------------------------------------------------ blocks, checkpoints, CIFAR-100 by stacking
def named_blocks(tree: object, base: Path) -> list[Path]:
    """The block files a config tree names (`val_attack: ../attacks/pgd10.yaml`, list items,
    `config: ../recipes/mi_paper.yaml`), resolved against the naming file's folder."""
    if isinstance(tree, dict):
        return [path for value in tree.values() for path in named_blocks(value, base)]
    if isinstance(tree, list):
        return [path for item in tree for path in named_blocks(item, base)]
    if isinstance(tree, str) and tree.endswith(".yaml"):
        return [(base / tree).resolve()]
    return []


def test_every_block_is_found_and_used():
    """Every block file that a config or block names exists, and every block is named."""
    named = set()
    for path in sorted(CONFIGS.glob("*/*.yaml")):
        for block in named_blocks(yaml.safe_load(path.read_text()), path.parent):
            assert block.is_file(), f"{path.relative_to(CONFIGS)} names {block}, which is missing"
            named.add(block)
    blocks = {p.resolve() for folder in BLOCK_FOLDERS for p in (CONFIGS / folder).glob("*.yaml")}
    # Data blocks that only a command line stacks (README): not named by a shipped config.
    stacked = {(CONFIGS / "data" / f"{name}.yaml").resolve() for name in (
        "cifar100", "svhn", "tiny_imagenet", "cifar10_jpeg_zip_eval")}  # fmt: skip
    assert blocks - named <= stacked, sorted(str(p) for p in blocks - named - stacked)


@pytest.mark.parametrize("config", EVALUATIONS, ids=lambda path: path.name)
def test_no_evaluation_names_a_default_checkpoint(config):
    """The checkpoint to measure is always given (`--model.init_args.checkpoint`)."""
    assert resolved_config("test", config)["model"]["init_args"]["checkpoint"] is None


@pytest.mark.parametrize("method", CIFAR100_METHODS)
def test_cifar100_is_the_cifar10_config_with_the_cifar100_block(method):
    """What the former configs/cifar100/ copies changed comes with the block: the data class
    (100 classes, linked into the model), its root and split; the recipe's batch 64 stays."""
    cifar10 = resolved_config("fit", CONFIGS / "cifar10" / f"{method}.yaml")
    cifar100 = resolved_command("fit", *command(f"cifar100/{method}.yaml"))
    assert cifar100["data"]["class_path"] == "mixup_robust.data.CIFAR100DataModule"
    assert cifar100["trainer"].pop("default_root_dir") == f"runs/cifar100/{method}"
    cifar10["trainer"].pop("default_root_dir")
    block = yaml.safe_load((CONFIGS / "data" / "cifar100.yaml").read_text())["data"]["init_args"]
    data = cifar100["data"]["init_args"]
    assert {key: data[key] for key in block} == block and data["batch_size"] == 64
    assert data == cifar10["data"]["init_args"]  # the same split, augmentation and batch
    assert {k: v for k, v in cifar100.items() if k != "data"} == {
        k: v for k, v in cifar10.items() if k != "data"
    }

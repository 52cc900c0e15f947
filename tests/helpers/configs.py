"""Shipped configs by name, the CIFAR-100 trainings as the stack that replaced configs/cifar100/.

`cifar100/<method>.yaml` names no file: it is `configs/cifar10/<method>.yaml` with
`configs/data/cifar100.yaml` stacked after it and the run folder the former copy had, as the
README runs it.
"""

from pathlib import Path

from tests.helpers.cli import REPO, resolved_command

CONFIGS = REPO / "configs"
# The methods whose CIFAR-100 configs (MI paper, Table 3) were copies of the CIFAR-10 ones.
CIFAR100_METHODS = ("aomixup", "at", "at_madry", "erm", "iat", "mixup")
CIFAR100 = [f"cifar100/{method}.yaml" for method in CIFAR100_METHODS]
# Folders of blocks that configs include or name; not configs of their own.
BLOCK_FOLDERS = ("attacks", "data", "defenses", "recipes")


def command(name: str) -> list[str | Path]:
    """The arguments that run a shipped config's name (relative to configs/)."""
    folder, file = name.split("/")
    if folder != "cifar100":
        return ["--config", CONFIGS / name]
    return [
        "--config", CONFIGS / "cifar10" / file, "--config", CONFIGS / "data" / "cifar100.yaml",
        "--trainer.default_root_dir", f"runs/cifar100/{Path(file).stem}",
    ]  # fmt: skip


def resolved(subcommand: str, name: str) -> dict:
    """The whole config that `cli.py <subcommand>` runs for a shipped config's name."""
    return resolved_command(subcommand, *command(name))

"""Shared fixtures: a tiny digits model trained once per test session through the CLI."""

import contextlib
import io
from pathlib import Path

import pytest
import torch
import yaml

from mixup_robust.cli import main

# Tiny tensors run fastest on one thread; two threads on two shared cores mostly contend.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def run_cli(*args: str):
    """Runs `cli.py` in this process and returns the LightningCLI object."""
    return main([str(arg) for arg in args])


def resolved_config(subcommand: str, *configs: Path | str) -> dict:
    """The whole config that `cli.py <subcommand> --config ...` runs (`--print_config`).

    Includes (`config: ../data/x.yaml`) are followed and defaults filled in, so a test can read
    a shipped config's data block, or change it and write it back as a self-contained file.
    """
    arguments: list[str | Path] = [subcommand]
    for config in configs:
        arguments += ["--config", config]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.raises(SystemExit) as exit_info:
        run_cli(*arguments, "--print_config")
    assert exit_info.value.code in (0, None), printed.getvalue()
    return yaml.safe_load(printed.getvalue())


def last_checkpoint(root: Path) -> Path:
    """The newest last.ckpt written under a run's default_root_dir."""
    found = sorted(root.glob("lightning_logs/version_*/checkpoints/last.ckpt"))
    assert found, f"no checkpoint under {root}"
    return max(found, key=lambda path: path.stat().st_mtime)


def fit_digits(root: Path, method: str = "mixup", epochs: int = 3, *extra: str) -> Path:
    """Trains a small CNN on the digits with a quickstart config; returns last.ckpt."""
    run_cli(
        "fit", "--config", REPO / "configs" / "quickstart" / f"{method}.yaml",
        "--trainer.max_epochs", epochs,
        "--trainer.default_root_dir", root,
        "--model.init_args.net.init_args.width", 8,
        *extra,
    )  # fmt: skip
    return last_checkpoint(root)


@pytest.fixture(scope="session")
def digits_checkpoint(tmp_path_factory) -> Path:
    """A mixup model trained for a few epochs on the digits (about 5 seconds)."""
    return fit_digits(tmp_path_factory.mktemp("mixup_run"), "mixup", 4)

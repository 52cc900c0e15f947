"""Driving `cli.py` from tests: in process, in a subprocess, or to print a resolved config."""

import contextlib
import io
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mixup_robust.cli import main

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
# The tests' own tiny configs (torchgeo's tests/conf): digits, SmallCNN of width 8.
CONF = REPO / "tests" / "conf"


def run_cli(*args: str | Path | int | float):
    """Runs `cli.py` in this process and returns the LightningCLI object."""
    return main([str(arg) for arg in args])


def run_cli_subprocess(*args: str | Path) -> None:
    """Runs `python cli.py ...` in a subprocess (DDP relaunches the command per rank)."""
    command = [sys.executable, str(REPO / "cli.py"), *map(str, args)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def run_cli_for_devices(*args: str | Path | int) -> None:
    """Runs `cli.py` where its strategy needs it: DDP in a subprocess, one process in this one.

    For tests that compare a run on one process with the same run under DDP: the DDP run
    needs a process of its own (it relaunches the command per rank); the one-process run does
    not, and in this process it skips a Python start and the imports (seconds each).
    """
    arguments = [str(arg) for arg in args]
    ddp = any(
        name == "--trainer.strategy" and value.startswith("ddp")
        for name, value in itertools.pairwise(arguments)
    )
    if ddp:
        run_cli_subprocess(*arguments)
    else:
        run_cli(*arguments)


def resolved_config(subcommand: str, *configs: Path | str) -> dict:
    """The whole config that `cli.py <subcommand> --config ...` runs (`--print_config`).

    Includes (`config: ../data/x.yaml`) are followed and defaults filled in, so a test can read
    a shipped config's data block, or change it and write it back as a self-contained file.
    """
    arguments: list[str | Path] = []
    for config in configs:
        arguments += ["--config", config]
    return resolved_command(subcommand, *arguments)


def resolved_command(subcommand: str, *arguments: str | Path) -> dict:
    """The whole config that `cli.py <subcommand> <arguments>` runs (`--print_config`)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.raises(SystemExit) as exit_info:
        run_cli(subcommand, *arguments, "--print_config")
    assert exit_info.value.code in (0, None), printed.getvalue()
    return yaml.safe_load(printed.getvalue())


def last_checkpoint(root: Path) -> Path:
    """The newest last.ckpt written under a run's default_root_dir."""
    found = sorted(root.glob("lightning_logs/version_*/checkpoints/last.ckpt"))
    assert found, f"no checkpoint under {root}"
    return max(found, key=lambda path: path.stat().st_mtime)


def fit_digits(
    root: Path, method: str = "mixup", epochs: int = 3, *extra: str | Path | int
) -> Path:
    """Trains a width-8 SmallCNN on the digits with tests/conf/<method>.yaml; returns last.ckpt."""
    run_cli(
        "fit", "--config", CONF / f"{method}.yaml",
        "--trainer.max_epochs", epochs,
        "--trainer.default_root_dir", root,
        *extra,
    )  # fmt: skip
    return last_checkpoint(root)


def fit_quickstart(root: Path, method: str, epochs: int, *extra: str | Path | int) -> Path:
    """Trains with the shipped `configs/quickstart/<method>.yaml` at width 8; returns last.ckpt.

    For tests of the shipped config itself; other tests train with `fit_digits`.
    """
    run_cli(
        "fit", "--config", REPO / "configs" / "quickstart" / f"{method}.yaml",
        "--trainer.max_epochs", epochs,
        "--trainer.default_root_dir", root,
        "--model.init_args.net.init_args.width", 8,
        *extra,
    )  # fmt: skip
    return last_checkpoint(root)


def measure_digits(config: Path, checkpoint: Path, output: Path, *extra: str | Path | int) -> list:
    """Runs `cli.py test` of a measurement config on a checkpoint; returns results.json's records.

    Logs go beside `output` (`<output>/../logs`); `extra` are further command-line options.
    """
    run_cli(
        "test", "--config", config,
        "--model.init_args.checkpoint", checkpoint,
        "--model.init_args.output_dir", output,
        "--trainer.default_root_dir", output.parent / "logs",
        *extra,
    )  # fmt: skip
    return json.loads((output / "results.json").read_text())

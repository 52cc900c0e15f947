"""Shared fixtures: a tiny digits model trained once per test session through the CLI.

Helpers live in `tests/helpers/`; test files import them from there, never from here.
"""

from pathlib import Path

import pytest
import torch

from tests.helpers.cli import fit_digits

# Tiny tensors run fastest on one thread; two threads on two shared cores mostly contend.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits_checkpoint(tmp_path_factory) -> Path:
    """A mixup model trained for a few epochs on the digits (about 5 seconds)."""
    return fit_digits(tmp_path_factory.mktemp("mixup_run"), "mixup", 4)

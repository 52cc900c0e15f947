"""Shared fixtures: tiny digits models trained once per test session through the CLI.

Each is built once for the whole session, also under pytest-xdist (the first worker to ask
trains it, the others wait for it: `tests/helpers/shared_runs.py`), and shared read-only: a
test that changes a checkpoint copies it first, and the session fails at its end if one did
not. Helpers live in `tests/helpers/`; test files import them from there, never from here.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers.ordering import longest_first, mark_recorded_slow, recorded_seconds

if TYPE_CHECKING:
    from tests.helpers.shared_runs import SharedRuns

# This file is imported by pytest-xdist's controller too, which runs no test: torch, Lightning
# and the package are imported in the fixtures (about 9 s of start-up saved per session).


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """Tiny tensors run fastest on one thread; two threads on two shared cores mostly contend."""
    import torch

    torch.set_num_threads(1)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: the recorded slow tests are marked
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    recorded = recorded_seconds()
    mark_recorded_slow(items, recorded)  # `-m "not slow"` skips tests of 0.3 s or more
    longest_first(items, recorded)  # parallel workers start the longest tests first


@pytest.fixture(scope="session")
def shared_runs(tmp_path_factory) -> Iterator["SharedRuns"]:
    from tests.helpers.shared_runs import SharedRuns, shared_root

    runs = SharedRuns(shared_root(tmp_path_factory))
    yield runs
    runs.assert_unchanged()


@pytest.fixture(scope="session")
def digits_checkpoint(shared_runs) -> Path:
    """A mixup model trained for a few epochs on the digits (about 5 seconds)."""
    from tests.helpers.shared_runs import mixup_epochs

    return shared_runs.get("mixup_4_epochs", mixup_epochs(4))


@pytest.fixture(scope="session")
def mixup_one_epoch(shared_runs) -> Path:
    """`fit_digits(root, "mixup", 1)`: tests/conf/mixup.yaml as it is, one epoch."""
    from tests.helpers.shared_runs import mixup_epochs

    return shared_runs.get("mixup_1_epoch", mixup_epochs(1))


@pytest.fixture(scope="session")
def mixup_two_epochs(shared_runs) -> Path:
    """`fit_digits(root, "mixup", 2)`: two epochs straight, what an exact resume must equal."""
    from tests.helpers.shared_runs import mixup_epochs

    return shared_runs.get("mixup_2_epochs", mixup_epochs(2))


@pytest.fixture(scope="session")
def mixup_first_epoch(shared_runs) -> Path:
    """The first epoch of a two-epoch mixup run (max_epochs 2, stopped by max_steps)."""
    from tests.helpers.shared_runs import mixup_first_epoch_of_two

    return shared_runs.get("mixup_first_epoch_of_2", mixup_first_epoch_of_two)

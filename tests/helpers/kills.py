"""Counting an evaluation's work and killing it at a chosen moment (tests of the store).

`counted_work` counts every call of a defense (each scoring, each attack query through a
defense): the count is deterministic for a config, so `kill_at` picks a moment inside a
unit of work, and the ledger file holds the count at the last committed unit. A resumed run
must then make exactly `total - ledger` calls: every finished unit skipped, nothing else.
`run_killed` runs `cli.py` in a subprocess that does this to itself.
"""

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from torch import nn

from mixup_robust.defenses import Defense
from mixup_robust.evaluation.store import SampleStore

REPO = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def counted_work(
    kill_at: int | None = None, ledger: Path | None = None, signum: int = signal.SIGKILL
) -> Iterator[list[int]]:
    """Counts defense calls (a one-element list); at call `kill_at` sends this process `signum`.

    With `ledger`, the count at each unit committed to the store is written there.
    """
    calls = [0]
    call, commit = nn.Module.__call__, SampleStore.commit

    def counted(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signum)
        return call(self, *args, **kwargs)

    def committed(self, *args, **kwargs):
        commit(self, *args, **kwargs)
        if ledger is not None:
            ledger.write_text(str(calls[0]))

    Defense.__call__ = counted
    SampleStore.commit = committed
    try:
        yield calls
    finally:
        del Defense.__call__
        SampleStore.commit = commit


DRIVER = """
import signal, sys
from pathlib import Path
import torch
from mixup_robust.cli import main
from tests.helpers.kills import counted_work

torch.set_num_threads(1)  # as the tests' own process: identical floating-point results
kill_at, ledger, signum = int(sys.argv[1]), Path(sys.argv[2]), getattr(signal, sys.argv[3])
with counted_work(kill_at, ledger, signum):
    main(sys.argv[4:])
"""


def run_killed(
    kill_at: int, ledger: Path, *args: str | Path, signum: str = "SIGKILL", env: dict | None = None
) -> subprocess.CompletedProcess:
    """Runs `cli.py <args>` in a subprocess that sends itself `signum` at defense call `kill_at`.

    `env` adds to the environment (e.g. SLURM's variables). The driver is a script file
    beside the ledger, so that DDP can start the other ranks with the same command (each
    rank counts its own calls and signals itself).
    """
    driver = ledger.parent / "kill_driver.py"
    driver.write_text(DRIVER)
    command = [sys.executable, str(driver), str(kill_at), str(ledger), signum, *map(str, args)]
    environment = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(
        command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=600
    )

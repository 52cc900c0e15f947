"""The number of CPU threads of a command-line run: the user's setting, or a documented default.

torch's own default is one thread per core of the whole machine. On a shared machine or a
large node it ignores the CPUs a job was given (a SLURM cpuset, `taskset`) and the work
already running there, and its threads then fight other work for the cores: on a busy 2-core
machine one thread fit the quickstart 7 times faster than torch's two (docs/speed.md). The
command line therefore runs with, in this order of precedence:

1. `--threads N` (an option of `cli.py`, anywhere on its command line);
2. `MIXUP_ROBUST_THREADS=N` in the environment;
3. `OMP_NUM_THREADS`, when the user set it: torch reads it, and the run keeps it;
4. otherwise the default: the CPUs this process may run on, at most `DEFAULT_MAX_THREADS`,
   and on a machine shared without a cpuset only those that other work leaves idle,
   `ceil(CPUs - 1-minute load average)`, at least 1.

The thread count changes the last bits of float sums (1 vs 2 threads: weights differ by
about 1e-7 after a few digits epochs), so a default that follows the load can make two runs
of one config differ in those bits; when the load lowers it, one line says so, and
`--threads N` fixes the count for bit-identical reruns. Only the command line applies this:
a program that calls `mixup_robust.cli.main` itself keeps its own `torch.set_num_threads`.
"""

import math
import os
import sys
from collections.abc import Mapping

THREADS_VARIABLE = "MIXUP_ROBUST_THREADS"
# Past 8 threads the digits and CIFAR CPU configs' small convolutions gain little, and many
# threads on a busy node slow them down; `--threads` / MIXUP_ROBUST_THREADS raise it.
DEFAULT_MAX_THREADS = 8


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask, e.g. a SLURM cpuset)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def one_minute_load() -> float:
    """The 1-minute load average, or 0.0 where the platform has none."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not on this platform
        return 0.0


def default_threads(load: float | None = None) -> int:
    """The default count: the available CPUs that the load leaves idle, in [1, 8].

    A process confined to some of the machine's CPUs (a SLURM cpuset, `taskset`) was given
    them, and the machine's load average counts other jobs' CPUs: it then takes them all.

    Args:
        load: the 1-minute load average of the machine (default: `one_minute_load()`).
    """
    cpus = available_cpus()
    if cpus < (os.cpu_count() or cpus):
        return min(cpus, DEFAULT_MAX_THREADS)
    load = one_minute_load() if load is None else load
    return max(1, min(cpus, DEFAULT_MAX_THREADS, math.ceil(cpus - load)))


def chosen_threads(
    option: str | None, environ: Mapping[str, str], load: float | None = None
) -> tuple[int | None, str]:
    """The thread count to set and where it comes from; `None` keeps the user's OMP_NUM_THREADS.

    Args:
        option: the value of `--threads`, or None when it was not given.
        environ: the environment (`os.environ`).
        load: the 1-minute load average for the default (default: the machine's).

    Raises:
        ValueError: when `--threads` or MIXUP_ROBUST_THREADS is not a positive integer.
    """
    for value, source in ((option, "--threads"), (environ.get(THREADS_VARIABLE), THREADS_VARIABLE)):
        if value is None or (value == "" and source == THREADS_VARIABLE):
            continue  # an empty variable is unset; `--threads` with no number is an error
        if not value.strip().isdigit() or int(value) < 1:
            raise ValueError(f"{source}={value!r} must be a whole number of threads, at least 1.")
        return int(value), source
    if environ.get("OMP_NUM_THREADS"):
        return None, "OMP_NUM_THREADS"
    load = one_minute_load() if load is None else load
    return default_threads(load), f"default: {available_cpus()} CPUs at load {load:.1f}"


def apply_threads(
    option: str | None, environ: dict[str, str] | None = None, load: float | None = None
) -> int | None:
    """Sets torch's intra-op threads as `chosen_threads` says; returns the count set, or None.

    A count the user chose is also written to OMP_NUM_THREADS, so that DDP's processes (which
    rerun the command) and Lightning keep it; the default is not, so that Lightning still
    divides the CPUs among the processes of a multi-process CPU run. When the load lowered
    the default, `load_note` goes to stderr (on the first process only).
    """
    environ = os.environ if environ is None else environ
    count, source = chosen_threads(option, environ, load)
    if count is None:
        return None
    if not source.startswith("default"):
        environ["OMP_NUM_THREADS"] = str(count)
    import torch  # here: the top-level help never imports torch

    torch.set_num_threads(count)
    note = load_note(source, count)
    if note is not None and environ.get("LOCAL_RANK", "0") == "0" == environ.get("NODE_RANK", "0"):
        sys.stderr.write(note + "\n")
    return count


def load_note(source: str, count: int) -> str | None:
    """One line when the machine's load lowered the default count, else None.

    Args:
        source: where the count came from (`chosen_threads`' second value).
        count: the thread count set.
    """
    unloaded = min(available_cpus(), DEFAULT_MAX_THREADS)
    if not source.startswith("default") or count >= unloaded:
        return None
    return (
        f"note: {source.removeprefix('default: ')}: this run uses {count} of {unloaded} "
        f"threads; `--threads N` or {THREADS_VARIABLE}=N fixes the count (docs/speed.md)."
    )

"""The number of CPU threads of a command-line run: the user's setting, or a documented default.

torch's own default is one thread per core of the whole machine. On a shared machine or a
large node it ignores the CPUs a job was given (a SLURM cpuset, `taskset`) and its threads
then fight other work for the cores; the tiny nets of the CPU configs gain little past a few
threads. The command line therefore runs with, in this order of precedence:

1. `--threads N` (an option of `cli.py`, anywhere on its command line);
2. `MIXUP_ROBUST_THREADS=N` in the environment;
3. `OMP_NUM_THREADS`, when the user set it: torch reads it, and the run keeps it;
4. otherwise `min(CPUs this process may run on, DEFAULT_MAX_THREADS)`.

Only the command line applies this: a program that calls `mixup_robust.cli.main` itself keeps
its own `torch.set_num_threads`. The default does not follow the machine's load: the thread
count changes the float sums, so a load-dependent count would make two runs of one config
differ. When the default meets a busy machine (load average at least the CPUs), `busy_note`
says so in one line; setting the count (to 1, say) silences it.
"""

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


def default_threads() -> int:
    """The default thread count: `min(available_cpus(), DEFAULT_MAX_THREADS)`."""
    return min(available_cpus(), DEFAULT_MAX_THREADS)


def chosen_threads(option: str | None, environ: Mapping[str, str]) -> tuple[int | None, str]:
    """The thread count to set and where it comes from; `None` keeps the user's OMP_NUM_THREADS.

    Args:
        option: the value of `--threads`, or None when it was not given.
        environ: the environment (`os.environ`).

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
    return default_threads(), f"default: min({available_cpus()} CPUs, {DEFAULT_MAX_THREADS})"


def apply_threads(option: str | None, environ: dict[str, str] | None = None) -> int | None:
    """Sets torch's intra-op threads as `chosen_threads` says; returns the count set, or None.

    A count the user chose is also written to OMP_NUM_THREADS, so that DDP's processes (which
    rerun the command) and Lightning keep it; the default is not, so that Lightning still
    divides the CPUs among the processes of a multi-process CPU run. On a busy machine the
    default also writes `busy_note` to stderr (on the first process only).
    """
    environ = os.environ if environ is None else environ
    count, source = chosen_threads(option, environ)
    if count is None:
        return None
    if not source.startswith("default"):
        environ["OMP_NUM_THREADS"] = str(count)
    import torch  # here: the top-level help never imports torch

    torch.set_num_threads(count)
    note = busy_note(source, count)
    if note is not None and environ.get("LOCAL_RANK", "0") == "0" == environ.get("NODE_RANK", "0"):
        sys.stderr.write(note + "\n")
    return count


def busy_note(source: str, count: int, load: float | None = None) -> str | None:
    """A one-line note when the default count meets a busy machine, else None.

    Args:
        source: where the count came from (`chosen_threads`' second value).
        count: the thread count set.
        load: the 1-minute load average (default: `os.getloadavg()`).
    """
    if not source.startswith("default") or count < 2:
        return None
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # not on this platform
            return None
    cpus = available_cpus()
    if load < cpus:
        return None
    return (
        f"note: the machine is busy (load {load:.1f} on {cpus} CPUs) and this run uses {count} "
        f"threads; on a busy machine `--threads 1` or {THREADS_VARIABLE}=1 can be several times "
        "faster (docs/speed.md)."
    )

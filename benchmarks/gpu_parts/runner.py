"""Time caps and incremental results of `gpu_suite.py`'s parts.

Every part gets a `Budget` (its own cap, cut to what is left of the suite's) and a `PartLog`.
A part checks `budget.expired()` between its steps or batches and stops there; a part that
does not come back within its cap plus `GRACE_S` is interrupted by SIGALRM (`PartOverrun`,
a `BaseException` so that no `except Exception` on the way swallows it). Every figure a part
logs is written at once to `gpu_suite.json` and `gpu_suite.md` (atomically), so a run cut off
by the machine's own limit still returns what it measured; a part that fails records its
error and the suite goes on.
"""

import contextlib
import gc
import json
import math
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from mixup_robust.atomic import write_atomically

JSON_NAME, MARKDOWN_NAME = "gpu_suite.json", "gpu_suite.md"
GRACE_S = 20.0  # past its cap, a part that has not stopped between steps is interrupted
MIN_PART_S = 5.0  # a part with less time left than this is skipped


class PartOverrun(BaseException):
    """Raised by SIGALRM in a part that ran past its cap plus the grace time."""


class Budget:
    """A deadline `seconds` from now; `expired()` notes that the part was cut."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.cut = False

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def expired(self) -> bool:
        if self.remaining() <= 0:
            self.cut = True
        return self.cut


@contextlib.contextmanager
def hard_stop(seconds: float) -> Iterator[None]:
    """Raises `PartOverrun` in the block after `seconds` (main thread with SIGALRM only)."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame) -> None:
        raise PartOverrun(f"interrupted {seconds:.0f} s after the part started")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _number(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, float):
        return "" if value is None else str(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0 or 0.01 <= abs(value) < 1e6:
        return f"{value:.4g}" if abs(value) < 100 else f"{value:.1f}"
    return f"{value:.3g}"


def markdown_table(rows: list[dict]) -> list[str]:
    """A Markdown table of `rows` (dicts), the columns in order of first appearance."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_number(row.get(key)) for key in columns) + " |")
    return lines


def render_markdown(data: dict) -> str:
    """The suite's results as Markdown: settings, environment, then a section per part."""
    suite = data["suite"]
    lines = [f"# GPU suite{' (dry run on tiny sizes)' if suite.get('dry_run') else ''}", ""]
    lines += [f"- {key}: {_number(value)}" for key, value in suite.items()]
    lines += ["", "## Environment", ""]
    lines += [f"- {key}: {_number(value)}" for key, value in data["environment"].items()]
    for name, part in data["parts"].items():
        lines += ["", f"## {name}: {part['status']}", ""]
        lines += [f"- {key}: {_number(value)}" for key, value in part["info"].items()]
        if part.get("error"):
            lines += ["", "```", part["error"].rstrip(), "```"]
        for table, rows in part["tables"].items():
            lines += ["", f"### {name}: {table}", "", *markdown_table(rows)]
    return "\n".join(lines) + "\n"


class Recorder:
    """The suite's results, written to `out` after every change."""

    def __init__(self, out: Path, suite: dict) -> None:
        self.out = out
        self.data: dict = {"suite": suite, "environment": {}, "parts": {}}
        self.started = time.monotonic()

    def save(self) -> None:
        self.data["suite"]["elapsed_s"] = round(time.monotonic() - self.started, 1)
        text = json.dumps(self.data, indent=1, default=str)
        write_atomically(self.out / JSON_NAME, text + "\n")
        write_atomically(self.out / MARKDOWN_NAME, render_markdown(self.data))


class PartLog:
    """One part's entry: status, `info` figures, named tables of rows; each call saves."""

    def __init__(self, recorder: Recorder, name: str, cap_s: float, say: Callable) -> None:
        self.recorder, self.name, self.say = recorder, name, say
        self.entry = {"status": "running", "cap_s": round(cap_s, 1), "elapsed_s": None,
                      "error": None, "info": {}, "tables": {}}  # fmt: skip
        recorder.data["parts"][name] = self.entry
        recorder.save()

    def info(self, key: str, value: object) -> None:
        """Records one figure or setting and prints it."""
        self.entry["info"][key] = value
        self.say(f"[{self.name}] {key}: {_number(value)}")
        self.recorder.save()

    def row(self, table: str, row: dict) -> None:
        """Appends one row to a table and prints it."""
        self.entry["tables"].setdefault(table, []).append(row)
        shown = ", ".join(f"{key}={_number(value)}" for key, value in row.items())
        self.say(f"[{self.name}/{table}] {shown}")
        self.recorder.save()

    def finish(self, status: str, elapsed: float, error: str | None = None) -> None:
        self.entry.update(status=status, elapsed_s=round(elapsed, 1), error=error)
        self.say(f"[{self.name}] {status} after {elapsed:.1f} s (cap {self.entry['cap_s']} s)")
        self.recorder.save()


Part = Callable[[Budget, PartLog], None]


def run_part(
    name: str, part: Part, recorder: Recorder, cap_s: float, suite: Budget, say: Callable
) -> str:
    """Runs one part under its cap; returns its status (ok, cut off, error, skipped)."""
    cap = min(cap_s, suite.remaining())
    log = PartLog(recorder, name, cap, say)
    if cap < MIN_PART_S:
        log.finish("skipped (the suite's time cap was reached)", 0.0)
        return "skipped"
    budget, start, cpu, error = Budget(cap), time.monotonic(), time.process_time(), None
    try:
        with hard_stop(cap + GRACE_S):
            part(budget, log)
        status = "cut off at its cap (partial figures)" if budget.cut else "ok"
    except PartOverrun as overrun:
        status, error = "cut off by the hard stop (partial figures)", str(overrun)
    except Exception:
        status, error = "error", traceback.format_exc(limit=-8)
    finally:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    log.entry["cpu_s"] = round(time.process_time() - cpu, 1)
    log.finish(status, time.monotonic() - start, error)
    return status.split(" (")[0]

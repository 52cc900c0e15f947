"""Records each test's wall seconds into tests/durations.json (the order and the `slow` set).

Runs the whole suite with `--durations=0` and keeps, per test, setup + call + teardown. Run
it on an otherwise idle machine after adding or renaming tests of half a second or more:
    python -m tests.helpers.record_durations            (extra arguments go to pytest)
A test that is not recorded still runs; it is only scheduled as if it were instant, and stays
out of the `slow` set unless it carries `@pytest.mark.slow`.
"""

import json
import re
import subprocess
import sys
from collections import Counter

from tests.helpers.ordering import DURATIONS

# "12.34s call     tests/x.py::test_y[a]" (pytest's --durations report)
REPORT_LINE = re.compile(r"^([\d.]+)s (?:setup|call|teardown)\s+(\S+::.+)$", re.MULTILINE)


def parse_durations(report: str) -> dict[str, float]:
    """Each test's summed setup, call and teardown seconds from pytest's durations report."""
    seconds: Counter[str] = Counter()
    for value, node in REPORT_LINE.findall(report):
        seconds[node] += float(value)
    return {node: round(total, 2) for node, total in sorted(seconds.items())}


def main() -> None:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["--durations=0", "--durations-min=0.01", *sys.argv[1:]]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = done.stdout[-2000:]
        sys.exit(f"the suite failed (exit {done.returncode}); nothing recorded\n{tail}")
    recorded = parse_durations(done.stdout)
    DURATIONS.write_text(json.dumps(recorded, indent=0, sort_keys=True) + "\n")
    print(f"{len(recorded)} tests recorded in {DURATIONS}")


if __name__ == "__main__":
    main()

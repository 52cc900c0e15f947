"""The order the tests run in, and which are `slow`: from each test's recorded seconds.

pytest-xdist hands the tests to its workers in collection order. A long test that comes late
runs alone at the end while the other workers idle; started first, it runs beside the short
ones (longest-processing-time-first scheduling). Each test's cost is its wall time recorded
in `tests/durations.json` (setup + call + teardown, on one idle core per worker; rewrite it
with `python -m tests.helpers.record_durations`); a test not recorded yet costs its
`@pytest.mark.slow(seconds=N)` estimate, 1 for other slow tests, else 0. A recorded test of
`SLOW_SECONDS` or more is marked `slow`, so `-m "not slow"` is the sub-second loop. The order
is the same in every worker, as xdist requires.
"""

import json
from pathlib import Path

import pytest

DURATIONS = Path(__file__).resolve().parents[1] / "durations.json"
# `-m "not slow"` keeps the tests under 0.3 s: about 950 of them, well under a minute.
SLOW_SECONDS = 0.3


def recorded_seconds(path: Path = DURATIONS) -> dict[str, float]:
    """Each recorded test's wall seconds by node id (empty when nothing was recorded)."""
    if not path.is_file():
        return {}
    return {node: float(seconds) for node, seconds in json.loads(path.read_text()).items()}


def mark_recorded_slow(items: list[pytest.Item], recorded: dict[str, float]) -> None:
    """Marks `slow(seconds=...)` every test recorded at `SLOW_SECONDS` or more."""
    for item in items:
        seconds = recorded.get(item.nodeid, 0.0)
        if seconds >= SLOW_SECONDS and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow(seconds=seconds))


def estimated_seconds(item: pytest.Item, recorded: dict[str, float]) -> float:
    """A test's cost for the ordering: recorded seconds, else its `slow` estimate, else 0."""
    if item.nodeid in recorded:
        return recorded[item.nodeid]
    marker = item.get_closest_marker("slow")
    if marker is None:
        return 0.0
    return float(marker.kwargs.get("seconds", 1.0))


def longest_first(items: list[pytest.Item], recorded: dict[str, float]) -> None:
    """Sorts `items` in place by estimated cost, longest first; ties keep collection order."""
    items.sort(key=lambda item: estimated_seconds(item, recorded), reverse=True)

"""The order the tests run in: the longest first, so parallel workers finish together.

pytest-xdist hands the tests to its workers in collection order. A long test that comes late
runs alone at the end while the other workers idle; started first, it runs beside the short
ones (longest-processing-time-first scheduling). `slow` tests come before the rest, and among
them those that give an estimate, `@pytest.mark.slow(seconds=N)` (seconds on one idle core),
longest first. The order is the same in every worker, as xdist requires.
"""

import pytest


def estimated_seconds(item: pytest.Item) -> float:
    """A test's cost for the ordering: its `slow(seconds=N)`, 1 for other slow tests, else 0."""
    marker = item.get_closest_marker("slow")
    if marker is None:
        return 0.0
    return float(marker.kwargs.get("seconds", 1.0))


def longest_first(items: list[pytest.Item]) -> None:
    """Sorts `items` in place by estimated cost, longest first; ties keep collection order."""
    items.sort(key=estimated_seconds, reverse=True)

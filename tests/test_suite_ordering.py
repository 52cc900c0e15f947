"""The suite's order and its `slow` set come from the recorded seconds (tests/helpers/ordering)."""

import json

import pytest

from tests.helpers.ordering import (
    DURATIONS,
    SLOW_SECONDS,
    longest_first,
    mark_recorded_slow,
    recorded_seconds,
)
from tests.helpers.record_durations import parse_durations


class FakeItem:
    """What the ordering reads of a pytest item: its node id and its markers."""

    def __init__(self, nodeid: str, *markers: pytest.MarkDecorator) -> None:
        self.nodeid = nodeid
        self.markers = [marker.mark for marker in markers]

    def get_closest_marker(self, name: str):
        return next((mark for mark in self.markers if mark.name == name), None)

    def add_marker(self, marker: pytest.MarkDecorator) -> None:
        self.markers.append(marker.mark)


def test_recorded_tests_of_the_threshold_or_more_become_slow_and_run_longest_first():
    recorded = {"a": SLOW_SECONDS, "b": SLOW_SECONDS - 0.01, "c": 40.0}
    items = [
        FakeItem("b"), FakeItem("a"), FakeItem("new"), FakeItem("c"),
        FakeItem("estimated", pytest.mark.slow(seconds=7)), FakeItem("marked", pytest.mark.slow),
    ]  # fmt: skip
    mark_recorded_slow(items, recorded)
    slow = {item.nodeid for item in items if item.get_closest_marker("slow")}
    assert slow == {"a", "c", "estimated", "marked"}
    assert items[1].get_closest_marker("slow").kwargs == {"seconds": SLOW_SECONDS}  # "a"
    longest_first(items, recorded)
    # recorded seconds first, else the marker's estimate (1 when it gives none), else 0;
    # equal costs keep their collection order
    assert [item.nodeid for item in items] == ["c", "estimated", "marked", "a", "b", "new"]


def test_the_durations_report_is_summed_per_test_names_with_spaces_included():
    report = (
        "============ slowest durations ============\n"
        "2.50s call     tests/x.py::test_a[PGD-20 (eps 48/255)]\n"
        "0.25s setup    tests/x.py::test_a[PGD-20 (eps 48/255)]\n"
        "0.01s teardown tests/x.py::test_b\n"
        "(3 durations < 0.005s hidden.)\n"
        "2 passed in 3.00s\n"
    )  # fmt: skip
    assert parse_durations(report) == {
        "tests/x.py::test_a[PGD-20 (eps 48/255)]": 2.75, "tests/x.py::test_b": 0.01
    }  # fmt: skip


def test_the_recorded_file_is_read_back_and_a_missing_one_records_nothing(tmp_path):
    path = tmp_path / "durations.json"
    assert recorded_seconds(path) == {}
    path.write_text(json.dumps({"tests/x.py::test_a": 1.5}))
    assert recorded_seconds(path) == {"tests/x.py::test_a": 1.5}
    # the shipped file names real tests of this suite, each with a positive time
    shipped = recorded_seconds(DURATIONS)
    assert len(shipped) > 500 and all(seconds > 0 for seconds in shipped.values())
    assert all(node.startswith("tests/") and "::" in node for node in shipped)

"""Every console table of the evaluations fits 80 columns: no cell cut with '…', no line
longer than 80, every row label distinct, and each short label explained in the key."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from rich.console import Console

from mixup_robust.data.corruptions import BENCHMARK_CORRUPTIONS, EXTRA_CORRUPTIONS
from mixup_robust.evaluation.audit.verdict import print_audit
from mixup_robust.evaluation.console_tables import Grid, fit_grid, key_lines, short_labels
from mixup_robust.evaluation.corruption.module import corruption_records, corruption_table
from mixup_robust.evaluation.defense.tables import print_table
from mixup_robust.evaluation.linearity.module import LocalLinearityEvaluation
from tests.helpers.reports import (
    CIFAR_RUNGS,
    DEFENSES,
    DIGITS_RUNGS,
    FULL_ATTACKS,
    audit_summaries,
    evaluation_records,
)

ADAPTIVE_ATTACKS = [
    "PGD-10", "MI-adaptive PGD-10 (N_A=10)", "EOT-PGD-10 (N_A=10)", "PGD-10 through the defense",
    *[f"EOT-PGD-{steps} (N_A={n})" for steps in (50, 200) for n in (1, 10, 30)],
]  # fmt: skip


def _render(draw) -> list[str]:
    console = Console(width=80, record=True, color_system=None)
    draw(console)
    return console.export_text().splitlines()


def _check_fits(lines: list[str]) -> None:
    assert lines, "nothing was printed"
    assert max(len(line) for line in lines) <= 80, max(lines, key=len)
    assert not any("…" in line for line in lines), [line for line in lines if "…" in line]


def _table_rows(lines: list[str]) -> list[list[str]]:
    """Each table body as rows of cells: the lines between a header rule and a blank line."""
    tables, current = [], None
    for line in lines:
        if set(line.strip()) == {"─"}:
            current = []
            tables.append(current)
        elif current is not None and line.strip():
            current.append(line.split("  ")[0].strip())
        else:
            current = None
    return tables


def _key(lines: list[str]) -> dict[str, str]:
    """short -> full from the key lines (entries 'A3 PGD-10 (targeted, random)')."""
    start = lines.index("Key") + 1
    entries = {}
    for line in lines[start:]:
        parts = [part for part in line.split("   ") if part.strip()]
        if not all(part.strip()[0] in "ADRC" and part.strip()[1].isdigit() for part in parts):
            break
        for part in parts:
            short, full = part.strip().split(" ", 1)
            entries[short] = full.strip()
    return entries


@pytest.mark.parametrize(
    "attacks", [FULL_ATTACKS, ADAPTIVE_ATTACKS], ids=["evaluate_full", "adaptive"]
)
def test_the_defense_evaluation_tables_fit_80_columns(attacks):
    records = evaluation_records(attacks=attacks)
    lines = _render(lambda console: print_table(records, console))
    _check_fits(lines)
    tables = _table_rows(lines)
    assert len(tables) >= 3  # accuracy, ECE, AUROC (split into parts where needed)
    defenses = list(dict.fromkeys(r["defense"] for r in records))
    key = _key(lines) if "Key" in lines else {}
    for rows in tables:
        assert len(rows) == len(set(rows)) == len(defenses)
        assert [key.get(row, row) for row in rows] == defenses
    shown = " ".join(lines)
    for attack in ["clean", *attacks]:  # every attack named whole, in a header or the key
        assert attack in shown
    body = lines[: lines.index("Key")] if key else lines
    for full in key.values():  # a shortened name is short in every table (one label each)
        assert not any(full in line for line in body), full
    assert ("A3" in key) == (len(attacks) > 2)
    assert "n = 359 test points" in shown


@pytest.mark.parametrize(
    "defenses", [DEFENSES, [*DEFENSES, "VarMI-PL", "Xie resize-pad 16-24"]], ids=["8", "10"]
)
@pytest.mark.parametrize("rungs", [CIFAR_RUNGS, DIGITS_RUNGS], ids=["cifar10", "digits"])
def test_the_audit_prints_a_verdict_and_ladder_that_fit_80_columns(rungs, defenses):
    summaries = audit_summaries(rungs, defenses)
    report = Path("runs/quickstart/audit/lightning_logs/version_0/audit.md")
    lines = _render(lambda console: print_audit(summaries, console, report))
    _check_fits(lines)
    verdict, *ladder = _table_rows(lines)
    assert verdict == defenses  # whole names, one row each
    key = _key(lines)
    for part in ladder:
        assert [key.get(row, row) for row in part] == rungs
    # the ladder's columns name every defense, whole or by a short label in the key
    assert set(DEFENSES) <= {*key.values(), *" ".join(lines).split()} | set(DEFENSES[:3])
    for name in rungs:
        assert name in key.values() or len(name) <= 7
    text = "\n".join(lines)
    assert "red flag MI-OL: stronger attack raises accuracy" in text
    assert str(report) in text.replace("\n", "")


def test_the_corruption_and_linearity_tables_fit_80_columns():
    streams = [(n, s) for n in BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS for s in range(1, 6)]
    correct = torch.full((len(streams),), 950.0)
    total = torch.full((len(streams),), 1000.0)
    records = corruption_records(streams, correct, total, "last.ckpt")
    lines = _render(lambda console: console.print(corruption_table(records)))
    _check_fits(lines)
    assert len(lines) >= len(BENCHMARK_CORRUPTIONS) + len(EXTRA_CORRUPTIONS) + 1
    for name in BENCHMARK_CORRUPTIONS + EXTRA_CORRUPTIONS:
        assert sum(line.split("│")[1].strip() == name for line in lines if "│" in line) == 1

    owner = SimpleNamespace(steps=20)
    eps = [1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255]
    records = [{"eps": e, "n": 1000, "value": 0.123456 * e} for e in eps]
    lines = _render(lambda console: console.print(LocalLinearityEvaluation.table(owner, records)))
    _check_fits(lines)
    assert lines[0].strip() == "Local linearity error (PGD-20)"  # one line, not wrapped


def test_short_labels_keep_short_names_and_stay_distinct():
    labels = short_labels(["clean", "PGD-10", "PGD-20 (eps 48/255)"], "A")
    assert labels == {"clean": "clean", "PGD-10": "PGD-10", "PGD-20 (eps 48/255)": "A3"}
    clash = short_labels(["A2", "a very long attack name"], "A")  # 'A2' would be ambiguous
    assert clash == {"A2": "A1", "a very long attack name": "A2"}
    assert key_lines({"A3": "x" * 100}, 80) == ["A3 " + "x" * 100]  # never cut


def test_a_grid_too_wide_for_short_labels_is_split_into_parts():
    columns = [f"attack number {k}" for k in range(1, 31)]
    grid = Grid("Accuracy (%)", "defense", ["none", "MI-OL"], columns,
                [["12.5"] * 30, ["100.0"] * 30], column_prefix="A")  # fmt: skip
    renderables, key, short = fit_grid(grid, 80)
    assert short == (False, True)
    lines = _render(lambda console: [console.print(r) for r in renderables])
    _check_fits(lines)
    titles = [line for line in lines if line.startswith("Accuracy (%)")]
    assert titles == [f"Accuracy (%) ({k}/4)" for k in range(1, 5)]
    headers = [line.split() for line in lines if line.startswith("defense")]
    assert len(headers) == 4 and all(header[0] == "defense" for header in headers)
    shown = [label for header in headers for label in header[1:]]
    assert shown == [f"A{k}" for k in range(1, 31)]  # every column once, in order
    assert key == {f"A{k}": f"attack number {k}" for k in range(1, 31)}
    assert [row for rows in _table_rows(lines) for row in rows] == ["none", "MI-OL"] * 4

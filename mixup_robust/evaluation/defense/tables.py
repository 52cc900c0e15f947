"""The defense evaluation's tables: defense x attack, of accuracy, calibration and detection.

Printed to fit the console (`evaluation.console_tables`): long defense and attack names
become short labels with one key below the tables; results.json keeps the full names.
"""

from rich.console import Console

from mixup_robust.evaluation.console_tables import Grid, print_grids, short_labels

FIELDS = (
    ("accuracy", "Accuracy (%)"),
    ("ece", "Expected calibration error on clean inputs (%)"),
    ("auroc", "Detection AUROC, clean vs. adversarial (%)"),
)


def results_grid(
    records: list[dict], field: str = "accuracy", title: str = "Accuracy (%)"
) -> Grid | None:
    """A defense x attack grid of one field (in %), or None where no record has it.

    Attacks (columns) are the ones whose records carry `field`; defenses (rows) are every
    defense of the records, '-' where a cell has no value. Short labels are numbered over
    every attack and defense of the records, so all of a run's grids share one key.
    """
    present = [record for record in records if field in record]
    if not present:
        return None
    attacks = list(dict.fromkeys(record["attack"] for record in present))
    defenses = list(dict.fromkeys(record["defense"] for record in records))
    value = {(r["defense"], r["attack"]): r[field] for r in present}
    cells = [
        ["-" if (c := value.get((d, a))) is None else f"{100 * c:.1f}" for a in attacks]
        for d in defenses
    ]
    every_attack = list(dict.fromkeys(record["attack"] for record in records))
    return Grid(
        title, "defense", defenses, attacks, cells, row_prefix="D", column_prefix="A",
        row_short=short_labels(defenses, "D"), column_short=short_labels(every_attack, "A"),
    )  # fmt: skip


def _test_points(records: list[dict]) -> str:
    counts = sorted({r["n"] for r in records if r.get("attack") == "clean" and "n" in r})
    return "/".join(str(n) for n in counts)


def print_table(records: list[dict], console: Console | None = None) -> None:
    """Accuracy, then clean ECE and detection AUROC where the records carry them.

    The tables fit the console's width (short labels with one key below them if need be).
    """
    grids = [g for field, title in FIELDS if (g := results_grid(records, field, title))]
    notes = []
    if points := _test_points(records):
        notes.append(f"n = {points} test points; full names and every field in results.json.")
    print_grids(grids, console, notes)

"""The defense evaluation's tables: defense x attack, of accuracy, calibration and detection.

Printed to fit the console (`evaluation.console_tables`): long defense and attack names
become short labels with one key below the tables; results.json keeps the full names.
"""

from rich.console import Console

from mixup_robust.evaluation.console_tables import Grid, print_grids, short_labels
from mixup_robust.evaluation.intervals import auroc_interval, wilson_interval

FIELDS = (
    ("accuracy", "Accuracy (%)"),
    ("ece", "Expected calibration error on clean inputs (%)"),
    ("auroc", "Detection AUROC, clean vs. adversarial (%)"),
)


def cell_text(record: dict, field: str, paired_detection: bool = True) -> str:
    """One cell, in %: the value, and its 95 % interval where one is known.

    Accuracy: Wilson's interval over the record's `n` points. AUROC: Hanley and McNeil's,
    when every clean point is compared with its adversarial counterpart (`paired_detection`,
    detection_on 'all': n scores of each kind). A mean over trials shows `± std` instead.
    """
    value, n = record[field], record.get("n")
    if f"{field}_std" in record:
        return f"{100 * value:.1f} ± {100 * record[f'{field}_std']:.1f}"
    interval = None
    if field == "accuracy" and n:
        interval = wilson_interval(round(value * n), int(n))
    elif field == "auroc" and n and paired_detection:
        interval = auroc_interval(value, int(n), int(n))
    if interval is None:
        return f"{100 * value:.1f}"
    return f"{100 * value:.1f} [{100 * interval[0]:.1f}, {100 * interval[1]:.1f}]"


def results_grid(
    records: list[dict],
    field: str = "accuracy",
    title: str = "Accuracy (%)",
    paired_detection: bool = True,
) -> Grid | None:
    """A defense x attack grid of one field (in %), or None where no record has it.

    Attacks (columns) are the ones whose records carry `field`; defenses (rows) are every
    defense of the records, '-' where a cell has no value. Short labels are numbered over
    every attack and defense of the records, so all of a run's grids share one key. Cells
    give 95 % intervals where `cell_text` knows one.
    """
    present = [record for record in records if field in record]
    if not present:
        return None
    attacks = list(dict.fromkeys(record["attack"] for record in present))
    defenses = list(dict.fromkeys(record["defense"] for record in records))
    found = {(r["defense"], r["attack"]): r for r in present}
    cells = [
        [
            "-" if (r := found.get((d, a))) is None else cell_text(r, field, paired_detection)
            for a in attacks
        ]
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


def print_table(
    records: list[dict], console: Console | None = None, paired_detection: bool = True
) -> None:
    """Accuracy, then clean ECE and detection AUROC where the records carry them.

    The tables fit the console's width (short labels with one key below them if need be).
    Accuracy and AUROC cells give 95 % intervals (`cell_text`); `paired_detection` is False
    when the AUROC compared only some points (detection_on 'successful'), whose counts the
    records do not keep, so its cells give no interval.
    """
    grids = [
        grid
        for field, title in FIELDS
        if (grid := results_grid(records, field, title, paired_detection))
    ]
    notes = []
    if points := _test_points(records):
        notes.append(
            f"n = {points} test points; [95 % interval]: Wilson for accuracy, Hanley-McNeil "
            "for AUROC; full names and every field in results.json."
        )
    print_grids(grids, console, notes)

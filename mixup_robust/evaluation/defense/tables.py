"""The defense evaluation's tables: defense x attack, of accuracy, calibration and detection."""

from rich.console import Console
from rich.table import Table


def results_table(
    records: list[dict], field: str = "accuracy", title: str = "Accuracy (%)"
) -> Table | None:
    """A defense x attack table of one field (in %), or None where no record has it."""
    present = [record for record in records if field in record]
    if not present:
        return None
    attacks = list(dict.fromkeys(record["attack"] for record in present))
    defenses = list(dict.fromkeys(record["defense"] for record in records))
    value = {(r["defense"], r["attack"]): r[field] for r in present}
    table = Table(title=title)
    table.add_column("defense")
    for attack in attacks:
        table.add_column(attack, justify="right")
    for defense in defenses:
        cells = [value.get((defense, attack)) for attack in attacks]
        table.add_row(defense, *["-" if c is None else f"{100 * c:.1f}" for c in cells])
    return table


def print_table(records: list[dict], console: Console | None = None) -> None:
    """Accuracy, then clean ECE and detection AUROC where the records carry them."""
    console = console or Console()
    for field, title in (
        ("accuracy", "Accuracy (%)"),
        ("ece", "Expected calibration error on clean inputs (%)"),
        ("auroc", "Detection AUROC, clean vs. adversarial (%)"),
    ):
        table = results_table(records, field, title)
        if table is not None:
            console.print(table)

"""Result files and tables of an evaluation, written once and atomically."""

import csv
import io
import json
import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

RESULT_FILES = ("results.json", "results.csv", "trials.csv")


def write_atomically(path: Path, text: str) -> None:
    """Writes `text` to a temporary file beside `path`, then renames it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def refuse_overwrite(directory: Path) -> None:
    """Raises if an earlier evaluation's results are already in `directory`."""
    existing = [name for name in RESULT_FILES if (directory / name).exists()]
    if existing:
        raise FileExistsError(
            f"{directory} already holds results of an earlier run ({', '.join(existing)}). "
            "Choose another model.init_args.output_dir, or move those files away."
        )


def records_to_csv(records: list[dict]) -> str:
    columns: list[str] = []
    for record in records:
        columns += [key for key in record if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def write_results(directory: Path, records: list[dict]) -> None:
    """results.json (a list of records) and results.csv, never over an earlier run's files."""
    refuse_overwrite(directory)
    write_atomically(directory / "results.json", json.dumps(records, indent=2) + "\n")
    write_atomically(directory / "results.csv", records_to_csv(records))


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

"""Console tables that fit the terminal: whole labels where they fit, short ones with a key.

A rich table wider than the console squeezes its columns: names are cut to `EOT-P…` and cells
wrap into several lines. These tables never are: a `Grid` (row labels x column labels of
text cells) is printed with its full labels if it fits the console's width, else with short
labels (`A2`, `D4`, ...) for its long names and a key below, else split into several tables
of fewer columns. Result files keep the full names; only the console shortens them.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

# Labels of at most this many characters stay as they are ("clean", "PGD-10", "MI-OL").
KEEP = 7
# Cells that are numbers ("98.6", "1.0 ± 1.4", "98.6 [97.2, 99.4]", "-") are right-justified.
_NUMBER = re.compile(r"^(-|[-+]?[\d.]+( ± [\d.]+| \[[\d.]+, [\d.]+\])?%?)$")
# A measurement's worth of room: rich measures tables on a console this wide.
_UNBOUNDED = 10_000


def short_labels(names: Sequence[str], prefix: str) -> dict[str, str]:
    """Each name to itself if it has at most `KEEP` characters, else `prefix` + its position.

    Positions count from 1 over all `names`, so a table's key reads in the table's order.
    Should a kept name equal another's code (an attack named `A2`), every name is coded.
    """
    labels = {n: n if len(n) <= KEEP else f"{prefix}{k}" for k, n in enumerate(names, start=1)}
    if len(set(labels.values())) < len(labels):
        labels = {name: f"{prefix}{k}" for k, name in enumerate(names, start=1)}
    return labels


@dataclass
class Grid:
    """A table of text cells, rows x columns, and how to shorten its labels.

    Attributes:
        title: printed above the table (never squeezed into the table's width).
        corner: header of the row-label column.
        rows: full row labels (unique).
        columns: full column labels (unique).
        cells: one list of len(columns) strings per row.
        row_prefix: start of a row's short label ("D" for defenses).
        column_prefix: start of a column's short label ("A" for attacks).
        row_styles: a rich style per row (None: plain), e.g. red for a flagged defense.
        row_short: short labels of the rows, where several grids must share them (default:
            `short_labels(rows, row_prefix)`).
        column_short: the same for the columns.
    """

    title: str
    corner: str
    rows: list[str]
    columns: list[str]
    cells: list[list[str]]
    row_prefix: str = "R"
    column_prefix: str = "C"
    row_styles: list[str | None] = field(default_factory=list)
    row_short: dict[str, str] | None = None
    column_short: dict[str, str] | None = None


class Fitted(NamedTuple):
    """A grid laid out for the console: what to print, its key, which labels are short."""

    renderables: list[RenderableType]
    key: dict[str, str]
    short: tuple[bool, bool]  # (row labels, column labels) shortened


def natural_width(table: Table) -> int:
    """The width `table` takes when nothing limits it (no column squeezed)."""
    return Console(width=_UNBOUNDED).measure(table).maximum


def _table(grid: Grid, rows: list[str], columns: list[int], labels: list[str]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column(grid.corner, no_wrap=True)
    for number in columns:
        numeric = all(_NUMBER.match(cells[number]) for cells in grid.cells)
        table.add_column(labels[number], justify="right" if numeric else "left", no_wrap=True)
    styles = grid.row_styles or [None] * len(rows)
    for label, cells, style in zip(rows, grid.cells, styles, strict=True):
        table.add_row(label, *[cells[number] for number in columns], style=style)
    return table


def fit_grid(grid: Grid, width: int, short: tuple[bool, bool] = (False, False)) -> Fitted:
    """The grid as renderables no wider than `width`, and the key of the short labels used.

    Tries, in order: full labels; short column labels; short row labels; then short column
    labels with the columns split over at most two tables of full row labels; both labels
    short; and last, the columns split over as many tables as they need. `short` = (rows,
    columns) skips the layouts with whole row or column names (where another grid printed
    with it shortened them, so that one name has one label in all of them).
    """
    row_short = grid.row_short or short_labels(grid.rows, grid.row_prefix)
    column_short = grid.column_short or short_labels(grid.columns, grid.column_prefix)
    short_rows = [row_short[r] for r in grid.rows]
    short_columns = [column_short[c] for c in grid.columns]
    row_key, column_key = _key(row_short, grid.rows), _key(column_short, grid.columns)
    whole = [list(range(len(grid.columns)))]
    splits = {False: _split(grid, grid.rows, short_columns, width)}
    candidates = [
        (grid.rows, grid.columns, whole, {}),
        (grid.rows, short_columns, whole, column_key),
        (short_rows, grid.columns, whole, row_key),
        (grid.rows, short_columns, splits[False], column_key) if len(splits[False]) <= 2 else None,
        (short_rows, short_columns, whole, row_key | column_key),
    ]
    for candidate in filter(None, candidates):
        rows, labels, parts, key = candidate
        if (short[0] and rows is grid.rows) or (short[1] and labels is grid.columns):
            continue
        tables = [_table(grid, rows, part, labels) for part in parts]
        if all(natural_width(table) <= width for table in tables):
            used = (rows is not grid.rows, labels is not grid.columns)
            return Fitted(_titled(grid.title, tables), key, used)
    splits[True] = _split(grid, short_rows, short_columns, width)
    coded = short[0] or len(splits[True]) < len(splits[False])
    rows = short_rows if coded else grid.rows
    tables = [_table(grid, rows, part, short_columns) for part in splits[coded]]
    return Fitted(
        _titled(grid.title, tables), column_key | (row_key if coded else {}), (coded, True)
    )


def _titled(title: str, tables: list[Table]) -> list[RenderableType]:
    """Each table under its title ('title (2/3)' for parts), parts apart by a blank line."""
    if len(tables) == 1:
        return [Text(title, style="bold"), tables[0]]
    renderables: list[RenderableType] = []
    for number, table in enumerate(tables, start=1):
        if number > 1:
            renderables.append(Text(""))
        renderables += [Text(f"{title} ({number}/{len(tables)})", style="bold"), table]
    return renderables


def _split(grid: Grid, rows: list[str], labels: list[str], width: int) -> list[list[int]]:
    """Consecutive groups of columns, each as many as fit `width` beside the row labels."""
    parts: list[list[int]] = [[]]
    for number in range(len(grid.columns)):
        trial = [*parts[-1], number]
        if parts[-1] and natural_width(_table(grid, rows, trial, labels)) > width:
            parts.append([number])
        else:
            parts[-1] = trial
    return parts


def _key(labels: dict[str, str], used: Sequence[str]) -> dict[str, str]:
    """Maps short to full labels, for the labels of `used` that were shortened."""
    return {labels[name]: name for name in used if labels[name] != name}


def key_lines(key: dict[str, str], width: int) -> list[str]:
    """'A2 PGD-10 (targeted, random)' entries in aligned columns, lines of at most `width`.

    An entry longer than `width` gets a line of its own (the console wraps it, never cuts it).
    """
    entries = [f"{short:<{max(map(len, key))}} {full}" for short, full in key.items()]
    if not entries:
        return []
    cell = max(map(len, entries)) + 3
    per_line = max(1, (width + 3) // cell)
    return [
        "".join(entry.ljust(cell) for entry in entries[start : start + per_line]).rstrip()
        for start in range(0, len(entries), per_line)
    ]


def print_grids(
    grids: Sequence[Grid],
    console: Console | None = None,
    notes: Sequence[str | Text] = (),
    key: dict[str, str] | None = None,
) -> None:
    """Prints each grid fitted to the console's width, then one key of short labels, then notes.

    Args:
        grids: the tables, in order.
        console: where to print (default: a new rich Console).
        notes: lines printed after the key (what a column means, where the full report is);
            strings are printed as they are (no rich markup), Text with its styles.
        key: further short labels to explain (labels used in cells, e.g. a strongest rung).
    """
    console = console or Console()
    width = console.width
    merged = dict(key or {})
    # Rows (columns) that one grid shortens are shortened in every grid whose rows (columns)
    # have the same prefix, i.e. name the same things: one name, one label on the screen.
    first = [(grid, fit_grid(grid, width).short) for grid in grids]
    short_rows = {g.row_prefix for g, (rows, _) in first if rows}
    short_columns = {g.column_prefix for g, (_, columns) in first if columns}
    for grid in grids:
        short = (grid.row_prefix in short_rows, grid.column_prefix in short_columns)
        renderables, used, _ = fit_grid(grid, width, short)
        for renderable in renderables:
            console.print(renderable)
        merged |= used
        console.print()
    if merged:
        console.print(Text("Key", style="bold"))
        for line in key_lines(merged, width):
            console.print(Text(line))
    for note in notes:
        console.print(note if isinstance(note, Text) else Text(note))

"""The per-sample results store: every finished unit of an evaluation, kept as it ends.

A measurement splits its work into *units* (one test batch, or one trial of a batch, or one
rung of the audit's ladder). When a unit ends, its per-sample records and its small summary
(`payload`) are committed in one SQLite transaction, so a kill at any instant loses at most
the unit in flight, and a rerun of the same command skips every unit already there. The
results of the run are computed from the store, never from state that only lived in memory.

One file per rank (and shard) in the run directory (`samples-rank0.sqlite`,
`samples-shard2of8-rank0.sqlite`): no file is written by two processes, so nothing depends on
file locks across the nodes of a shared file system. See docs/evaluation-store.md.
"""

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

STORE_GLOB = "samples-*.sqlite"
SCHEMA_VERSION = "1"
# The columns of one per-sample record, in order (the `samples` table adds `unit`).
SAMPLE_FIELDS = (
    "slot", "sample", "trial", "defense", "attack", "label", "correct", "prediction",
    "confidence", "detection", "bare_correct", "value", "seconds",
)  # fmt: skip
_SCHEMA = f"""
BEGIN;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS units (
    unit TEXT PRIMARY KEY, batch INTEGER NOT NULL, part INTEGER NOT NULL,
    payload TEXT, seconds REAL NOT NULL);
CREATE TABLE IF NOT EXISTS samples (
    unit TEXT NOT NULL REFERENCES units(unit), slot INTEGER NOT NULL, sample INTEGER NOT NULL,
    trial INTEGER NOT NULL, defense TEXT, attack TEXT, label INTEGER, correct INTEGER,
    prediction INTEGER, confidence REAL, detection REAL, bare_correct INTEGER, value REAL,
    seconds REAL);
CREATE INDEX IF NOT EXISTS samples_of_unit ON samples(unit);
INSERT OR IGNORE INTO meta VALUES ('schema', '{SCHEMA_VERSION}');
"""
_INSERT = f"INSERT INTO samples VALUES (?, {', '.join('?' for _ in SAMPLE_FIELDS)})"


@dataclass(frozen=True)
class Unit:
    """One finished unit of work.

    Attributes:
        name: its key, unique in the run (e.g. `batch 3 trial 1`).
        batch: the test batch it belongs to (its position in the test loop).
        part: its order within the batch (trial, rung ...).
        payload: the unit's summary (counts, sums) as JSON-able values, or None.
        seconds: wall time the unit took.
    """

    name: str
    batch: int
    part: int
    payload: object
    seconds: float


def sample_rows(length: int, **columns: object) -> list[tuple]:
    """Per-sample record tuples in `SAMPLE_FIELDS` order.

    Each column is a tensor or list of `length` values, or one value shared by every row;
    a field not given is NULL.
    """
    values = []
    for name in SAMPLE_FIELDS:
        column = columns.pop(name, None)
        if isinstance(column, torch.Tensor):
            column = column.detach().cpu().tolist()
        if not isinstance(column, list):
            column = [column] * length
        if len(column) != length:
            raise ValueError(f"column {name} has {len(column)} values for {length} samples")
        values.append(column)
    if columns:
        raise ValueError(f"unknown sample fields {sorted(columns)}; known: {SAMPLE_FIELDS}")
    return list(zip(*values, strict=True))


class UnitStore:
    """Finished units and their per-sample records, in memory (the store switched off)."""

    def __init__(self) -> None:
        self._units: dict[str, Unit] = {}
        self._rows: dict[str, list[tuple]] = {}

    def done(self, name: str) -> bool:
        """Whether the unit `name` has finished (in this run or an earlier, interrupted one)."""
        return name in self._units

    def commit(self, unit: Unit, rows: Sequence[tuple]) -> None:
        """Keeps one finished unit with its per-sample rows (tuples of `sample_rows`)."""
        self._units[unit.name] = unit
        self._rows[unit.name] = list(rows)

    def units(self) -> list[Unit]:
        """Every finished unit in the order of the run: by batch, then part."""
        return sorted(self._units.values(), key=lambda unit: (unit.batch, unit.part))

    def rows(self, name: str) -> list[tuple]:
        """The unit's per-sample rows, in the order they were committed."""
        return self._rows[name]

    def close(self) -> None:
        """Releases the store (nothing to do in memory)."""


class SampleStore(UnitStore):
    """The SQLite file of one rank (and shard): each unit committed in one transaction.

    Args:
        path: the database file; created with its tables if missing.
        meta: what the run records about itself (`config`, `measure` ...), written into a
            new file; an existing file keeps its own (compare with `read_meta` first).
        read_only: open an existing file to read only (another shard's).
    """

    def __init__(
        self, path: Path, meta: dict[str, str] | None = None, read_only: bool = False
    ) -> None:
        super().__init__()
        self.path = path
        # isolation_level=None: transactions are explicit (BEGIN ... COMMIT in `commit`).
        if read_only:  # another process's file (a shard's): never written from here
            uri = f"{path.resolve().as_uri()}?mode=ro"
            self.connection = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=60)
        else:
            self.connection = sqlite3.connect(path, isolation_level=None, timeout=60)
            self.connection.executescript(_SCHEMA)  # opens one transaction: one sync, not 8
            for key, value in (meta or {}).items():
                self.connection.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, value))
            self.connection.execute("COMMIT")
        self._names = {name for (name,) in self.connection.execute("SELECT unit FROM units")}

    def done(self, name: str) -> bool:
        """Whether the unit `name` is in the file."""
        return name in self._names

    def commit(self, unit: Unit, rows: Sequence[tuple]) -> None:
        """Writes the unit and its rows in one transaction (all of it, or nothing)."""
        connection = self.connection
        connection.execute("BEGIN IMMEDIATE")
        try:
            payload = None if unit.payload is None else json.dumps(unit.payload)
            connection.execute(
                "INSERT INTO units VALUES (?, ?, ?, ?, ?)",
                (unit.name, unit.batch, unit.part, payload, unit.seconds),
            )
            connection.executemany(_INSERT, [(unit.name, *row) for row in rows])
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        self._names.add(unit.name)

    def units(self) -> list[Unit]:
        """Every unit in the file, by batch, then part."""
        query = "SELECT unit, batch, part, payload, seconds FROM units ORDER BY batch, part"
        return [
            Unit(name, batch, part, None if payload is None else json.loads(payload), seconds)
            for name, batch, part, payload, seconds in self.connection.execute(query)
        ]

    def rows(self, name: str) -> list[tuple]:
        """The unit's rows, in the order they were committed."""
        fields = ", ".join(SAMPLE_FIELDS)
        query = f"SELECT {fields} FROM samples WHERE unit = ? ORDER BY rowid"
        return self.connection.execute(query, (name,)).fetchall()

    def mark_complete(self) -> None:
        """Records that this file's test loop finished (every unit of its rank and shard)."""
        self.connection.execute("INSERT OR REPLACE INTO meta VALUES ('complete', '1')")

    def close(self) -> None:
        """Closes the file."""
        self.connection.close()


class MergedStore(UnitStore):
    """This run's own store, plus other files of the run read as finished work (read only).

    A merge of shards (or a run that finishes what shards left) sees every unit of every
    file; new units go into its own file. A unit in several files (shards of different
    splits) counts once.

    Args:
        own: the store this process writes.
        others: the other store files of the same rank.
    """

    def __init__(self, own: UnitStore, others: list[Path]) -> None:
        super().__init__()
        self.own = own
        self.others = [SampleStore(path, read_only=True) for path in others]

    def _holder(self, name: str) -> UnitStore | None:
        return next((s for s in [self.own, *self.others] if s.done(name)), None)

    def done(self, name: str) -> bool:
        """Whether any of the files holds the unit."""
        return self._holder(name) is not None

    def commit(self, unit: Unit, rows: Sequence[tuple]) -> None:
        """Commits to this run's own file."""
        self.own.commit(unit, rows)

    def units(self) -> list[Unit]:
        """Every unit of every file, once each, by batch, then part."""
        units = {unit.name: unit for s in reversed([self.own, *self.others]) for unit in s.units()}
        return sorted(units.values(), key=lambda unit: (unit.batch, unit.part))

    def rows(self, name: str) -> list[tuple]:
        """The unit's rows, from the file that holds it."""
        holder = self._holder(name)
        if holder is None:
            raise KeyError(f"no stored unit {name!r}")
        return holder.rows(name)

    def close(self) -> None:
        """Closes every file."""
        for store in [self.own, *self.others]:
            store.close()


def read_meta(path: Path) -> dict[str, str]:
    """The `meta` table of a store file (read only; the file is not changed)."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
    try:
        return dict(connection.execute("SELECT key, value FROM meta"))
    finally:
        connection.close()


def parse_shard(shard: str | None) -> tuple[int, int] | None:
    """`"2/8"` as (2, 8): the second of eight shards; None stays None.

    Raises:
        ValueError: not `i/n` with 1 <= i <= n.
    """
    if shard is None:
        return None
    parts = shard.split("/")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise ValueError(f"shard={shard!r}; write it as i/n, e.g. '2/8' (the 2nd of 8 shards).")
    index, count = int(parts[0]), int(parts[1])
    if not 1 <= index <= count:
        raise ValueError(f"shard={shard!r}; i of i/n must lie in 1..n.")
    return index, count


def is_complete(path: Path) -> bool:
    """Whether the store file exists and its test loop finished (`mark_complete`)."""
    return path.is_file() and read_meta(path).get("complete") == "1"


def store_name(rank: int, shard: tuple[int, int] | None = None) -> str:
    """The file name of one rank's store (`samples-rank0.sqlite`, `samples-shard2of8-rank0...`)."""
    part = f"shard{shard[0]}of{shard[1]}-" if shard is not None else ""
    return f"samples-{part}rank{rank}.sqlite"


def flat_config(config: dict, exempt: Iterable[str] = ()) -> dict[str, object]:
    """A nested config as `a.b.c: value` pairs, without the keys under any `exempt` prefix."""
    flat: dict[str, object] = {}

    def walk(prefix: str, value: object) -> None:
        if any(prefix == key or prefix.startswith(f"{key}.") for key in exempt):
            return
        if isinstance(value, dict) and value:
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            flat[prefix] = value

    walk("", config)
    return flat


def config_differences(stored: dict, current: dict) -> list[str]:
    """The keys whose values differ between two flat configs, as `key: old -> new` lines."""
    keys = sorted(set(stored) | set(current))
    missing = "(unset)"
    return [
        f"{key}: {stored.get(key, missing)!r} -> {current.get(key, missing)!r}"
        for key in keys
        if stored.get(key, missing) != current.get(key, missing)
    ]

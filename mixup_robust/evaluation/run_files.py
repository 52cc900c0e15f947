"""The files of a measurement run (results, config, figures): written together, atomically, once."""

import contextlib
import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mixup_robust.atomic import umask_mode

TRIALS_FILE = "trials.csv"
RESULT_FILES = ("results.json", "results.csv", TRIALS_FILE)
CONFIG_FILE = "config.yaml"


def run_files_in(directory: Path, config_is_ours: bool = True) -> list[str]:
    """The files of an earlier run's results in `directory` (results, config, figures).

    Args:
        directory: the results directory.
        config_is_ours: whether a config.yaml there would be another run's; False where
            Lightning wrote this run's own config.yaml into its fresh log directory.
    """
    names = [*RESULT_FILES, *([CONFIG_FILE] if config_is_ours else [])]
    found = [name for name in names if (directory / name).exists()]
    return found + sorted(path.name for path in directory.glob("*.png"))


def refuse_overwrite(directory: Path, config_is_ours: bool = True) -> None:
    """Raises if `directory` holds any file of an earlier run's results."""
    existing = run_files_in(directory, config_is_ours)
    if existing:
        raise FileExistsError(
            f"{directory} already holds files of an earlier run ({', '.join(existing)}). "
            "The results, config and figures of one run are written together, never mixed "
            "with another's: choose another model.init_args.output_dir (or leave it unset "
            "for a fresh log directory), or move that directory away."
        )


@contextlib.contextmanager
def staged_run_files(
    directory: Path, config_is_ours: bool = True, refuse: bool = True
) -> Iterator[Path]:
    """A private folder to write one run's files into; they appear in `directory` together.

    Nothing is visible in `directory` until the block succeeds; then each file is renamed in,
    results.json last, so results.json present means every file of the run is. On any error
    the staged files are removed and `directory` is as before.

    Args:
        directory: the results directory.
        config_is_ours: see `run_files_in`.
        refuse: refuse an earlier run's files (before and after the block); False where the
            caller holds the directory's lock and checked it before compute (a resumed run
            replaces the files its killed first start left half renamed in).
    """
    directory.mkdir(parents=True, exist_ok=True)
    if refuse:
        refuse_overwrite(directory, config_is_ours)
    stage = Path(tempfile.mkdtemp(dir=directory, prefix=".staging-"))
    try:
        yield stage
        if refuse:  # another process may have written since
            refuse_overwrite(directory, config_is_ours)
        staged = sorted(stage.iterdir(), key=lambda path: path.name == "results.json")
        for path in staged:
            os.chmod(path, umask_mode())
            os.replace(path, directory / path.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def records_to_csv(records: list[dict]) -> str:
    """CSV text of the records: one column per key, in order of first appearance.

    A record without some key leaves that cell empty.
    """
    columns: list[str] = []
    for record in records:
        columns += [key for key in record if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    return buffer.getvalue()


def write_results(directory: Path, records: list[dict]) -> None:
    """results.json (a list of records) and results.csv into a staging folder."""
    (directory / "results.json").write_text(json.dumps(records, indent=2) + "\n")
    (directory / "results.csv").write_text(records_to_csv(records))


def record_metrics(records: list[dict]) -> dict[str, float]:
    """The numbers of the records as flat metrics, keyed `<its text fields>/<field>`.

    e.g. `MI-OL/PGD-10/accuracy` (defense and attack where the records have them); the
    checkpoint path is never part of a key.
    """
    metrics = {}
    for record in records:
        keys = ("defense", "attack") if "defense" in record and "attack" in record else record
        texts = [record[k] for k in keys if isinstance(record[k], str) and k != "checkpoint"]
        prefix = "/".join(texts)
        for field, value in record.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metrics[f"{prefix}/{field}" if prefix else field] = float(value)
    return metrics


def log_records(loggers: list, records: list[dict]) -> None:
    """Logs every record to the Lightning loggers (CSV, TensorBoard ...) as well as the files."""
    metrics = record_metrics(records)
    for logger in loggers:
        logger.log_metrics(metrics, step=0)
        logger.save()

"""Small evaluations of the digits for the tests of the store, resume and shards."""

import json
from pathlib import Path

import yaml

from tests.helpers.cli import CONF, resolved_config, run_cli


def evaluation_config(
    tmp_path: Path, checkpoint: Path, subset: int, batch_size: int = 20, **init_args
) -> Path:
    """tests/conf/evaluate.yaml with PGD-10 only, on `subset` test points, as a config file."""
    resolved = resolved_config("test", CONF / "evaluate.yaml")
    config = {key: resolved[key] for key in ("seed_everything", "trainer", "model", "data")}
    config["trainer"]["enable_progress_bar"] = False
    config["model"]["init_args"].update(checkpoint=str(checkpoint), **init_args)
    config["model"]["init_args"]["attacks"] = config["model"]["init_args"]["attacks"][:1]
    config["data"]["init_args"].update(test_subset_size=subset, eval_batch_size=batch_size)
    path = tmp_path / "evaluate.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def evaluate(config: Path, output: Path, *extra: str | Path | int) -> list[dict] | None:
    """Runs `cli.py test` into `output`; its results.json records, or None if none was written."""
    run_cli("test", "--config", config, "--model.init_args.output_dir", output,
            "--trainer.default_root_dir", output.parent / "logs", *extra)  # fmt: skip
    results = output / "results.json"
    return json.loads(results.read_text()) if results.exists() else None

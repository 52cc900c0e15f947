"""Shards of one evaluation (`shard: i/n`, a SLURM array) merge into the results of one run.

Each shard computes every n-th test batch into its own store file; the last shard to finish
writes the results of all, equal to one unsharded run. Rerunning without `shard` merges what
the shards finished and computes only what they left.
"""

from pathlib import Path

import pytest

from mixup_robust.evaluation.store import parse_shard
from tests.helpers.evaluations import evaluate, evaluation_config
from tests.helpers.kills import counted_work


@pytest.fixture
def config(digits_checkpoint, tmp_path) -> Path:
    """PGD-10 only, 2 trials, on 60 test points: 3 batches of 20."""
    return evaluation_config(tmp_path, digits_checkpoint, 60, trials=2)


@pytest.fixture
def straight(config, tmp_path) -> tuple[int, list[dict]]:
    with counted_work() as calls:
        records = evaluate(config, tmp_path / "straight")
    return calls[0], records


def test_three_shards_merge_into_the_results_of_one_run(config, tmp_path, straight, capsys):
    total, expected = straight
    output = tmp_path / "sharded"
    with counted_work() as calls:
        for shard in ("2/3", "3/3"):
            assert evaluate(config, output, "--model.init_args.shard", shard) is None
        assert "Shards [1] are not finished" in capsys.readouterr().err
        records = evaluate(config, output, "--model.init_args.shard", "1/3")
    assert calls[0] == total  # every batch once, over the three shards
    assert records == expected
    names = sorted(path.name for path in output.glob("samples-*.sqlite"))
    assert names == [f"samples-shard{i}of3-rank0.sqlite" for i in (1, 2, 3)]
    assert not list(output.glob("*.lock"))


def test_a_run_without_shard_merges_the_shards_and_computes_what_they_left(
    config, tmp_path, straight
):
    total, expected = straight
    output = tmp_path / "sharded"
    for shard in ("1/3", "3/3"):
        assert evaluate(config, output, "--model.init_args.shard", shard) is None
    with counted_work() as calls:
        records = evaluate(config, output)
    assert calls[0] == total // 3  # only the second shard's batch
    assert records == expected


def test_a_shard_is_written_as_i_of_n():
    assert parse_shard("2/8") == (2, 8) and parse_shard(None) is None
    for wrong in ("0/3", "4/3", "2", "a/b"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(wrong)

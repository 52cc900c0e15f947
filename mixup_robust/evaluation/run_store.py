"""Opening a run's store (fresh, resumed, or finishing what shards left) and merging shards.

A run writes its own file, `samples-rank<r>.sqlite`, or with `shard: i/n`
`samples-shard<i>of<n>-rank<r>.sqlite`. A run without `shard` reads every other store file
of its rank in the directory as finished work: rerunning the command without `shard` merges
the shards and computes whatever they left. A shard that finishes last (every shard's file
marked complete) merges them itself and writes the results. See docs/evaluation-store.md.
"""

import json
from pathlib import Path

import lightning as L
import yaml
from rich.console import Console

from mixup_robust.evaluation.run_guard import RunLock, prepare_run_directory
from mixup_robust.evaluation.store import (
    STORE_GLOB,
    MergedStore,
    SampleStore,
    UnitStore,
    flat_config,
    is_complete,
    store_name,
)

# Settings that do not change a measurement's numbers: a resume may differ in them.
RESUME_EXEMPT = (
    "trainer.enable_progress_bar", "trainer.enable_model_summary", "trainer.callbacks",
    "trainer.logger", "trainer.log_every_n_steps", "verbose", "model.init_args.shard",
)  # fmt: skip


def resume_config(resolved: str | None, measure: str, seed: int) -> dict[str, object]:
    """The settings a resume must share: the CLI's resolved config, less RESUME_EXEMPT.

    `resolved` is the YAML text of the CLI's config; a run without the CLI (the Python API,
    None) compares the measurement's class and seed. Values are as JSON gives them back.
    """
    if resolved is None:
        return {"measure": measure, "seed": seed}
    return json.loads(json.dumps(flat_config(yaml.safe_load(resolved), RESUME_EXEMPT), default=str))


def open_run_store(
    trainer: L.Trainer,
    directory: Path,
    config: dict[str, object],
    config_is_ours: bool,
    shard: tuple[int, int] | None,
    use_store: bool,
    measure: str,
) -> tuple[UnitStore, RunLock | None]:
    """Prepares the directory (rank 0: checks, lock, refusal) and opens this rank's store.

    Every rank raises rank 0's error, so no rank computes when the directory is refused.
    Returns the store and, on rank 0, the lock to release at the end.
    """
    failure: BaseException | None = None
    lock, resumed = None, 0
    if trainer.is_global_zero:
        try:
            lock, stores = prepare_run_directory(directory, config, config_is_ours, shard)
            resumed = len(stores)
        except OSError as error:
            failure = error
    failure = trainer.strategy.broadcast(failure)
    if failure is not None:
        raise failure
    if not use_store:
        return UnitStore(), lock
    meta = {"config": json.dumps(config), "measure": measure,
            "world_size": str(trainer.world_size)}  # fmt: skip
    path = directory / store_name(trainer.global_rank, shard)
    own = SampleStore(path, meta)
    rank = f"rank{trainer.global_rank}.sqlite"
    others = [p for p in sorted(directory.glob(STORE_GLOB)) if p.name.endswith(rank) and p != path]
    store = MergedStore(own, others) if others and shard is None else own
    if resumed and trainer.is_global_zero:
        Console(stderr=True, soft_wrap=True).print(
            f"resuming the unfinished run in {directory}: {len(store.units())} finished units "
            "of this rank are kept and skipped.",
            highlight=False,
        )
    return store, lock


def merge_when_complete(
    trainer: L.Trainer, directory: Path, store: UnitStore, shard: tuple[int, int] | None
) -> tuple[UnitStore | None, RunLock | None]:
    """Marks a shard's file complete; the store to compute the run's results from, or None.

    Without shards: the store itself. A shard: None (with a message) while another shard is
    unfinished, or while another shard merges (it holds `run.lock`); else the merge of every
    shard's file, and (rank 0) the run's lock, to release once the results are written. The
    ranks agree.
    """
    own = store.own if isinstance(store, MergedStore) else store
    if shard is None:  # only a shard's completion is ever asked (saves a sync)
        return store, None
    if not isinstance(own, SampleStore):
        raise ValueError("A sharded evaluation needs its store (MeasurementModule.use_store).")
    own.mark_complete()
    files = [directory / store_name(trainer.global_rank, (i, shard[1]))
             for i in range(1, shard[1] + 1)]  # fmt: skip
    missing = [i + 1 for i, path in enumerate(files) if not is_complete(path)]
    ready = trainer.strategy.reduce_boolean_decision(not missing, all=True)
    lock = None
    if ready and trainer.is_global_zero:
        lock = RunLock(directory)  # one merge writes the results
        try:
            lock.acquire()
        except FileExistsError:
            ready, lock = False, None
        if ready and (directory / "results.json").exists():
            lock.release()
            ready, lock = False, None
    if bool(trainer.strategy.broadcast(ready)):
        return MergedStore(own, [path for path in files if path != own.path]), lock
    if trainer.is_global_zero:
        waiting = (
            f"Shards {missing} are not finished: the last shard to finish writes the results "
            "of all (or rerun this command without the shard option to merge and finish)."
            if missing
            else "Another shard writes the results."
        )
        Console(stderr=True, soft_wrap=True).print(
            f"shard {shard[0]}/{shard[1]} finished in {directory}. {waiting}", highlight=False
        )
    return None, None

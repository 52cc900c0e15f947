"""What the per-sample results store costs: the quickstart evaluation with the store on and off.

Runs `configs/quickstart/evaluate.yaml` (the digits' whole test split, 3 defenses with MI's
N = 30, clean + PGD-10 + PGD-20) through `cli.py test` in this process, alternating the store
on (`samples-rank0.sqlite`, one transaction per finished unit) and off
(`MeasurementModule.use_store = False`: the same per-sample rows kept in memory and replayed
the same way), `--repeats` times each, into fresh output directories. Prints the median wall
time of each, their ratio, and the time spent inside the store itself (commits and reads,
timed around `SampleStore`'s methods) as a share of the run.

Run from the repository root (trains the quickstart's tiny model first if no --checkpoint):
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/evaluation_store.py --repeats 3
"""

import argparse
import contextlib
import io
import statistics
import tempfile
import time
from pathlib import Path

from mixup_robust.cli import main
from mixup_robust.evaluation.measurement import MeasurementModule
from mixup_robust.evaluation.store import SampleStore

REPO = Path(__file__).resolve().parents[1]
STORE_METHODS = ("__init__", "commit", "units", "rows", "mark_complete", "close")


def timed_store() -> list[float]:
    """Wraps SampleStore's methods to sum the seconds spent in them (one-element list)."""
    spent = [0.0]
    for name in STORE_METHODS:
        original = getattr(SampleStore, name)

        def timed(self, *args, _original=original, **kwargs):
            start = time.perf_counter()
            try:
                return _original(self, *args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start

        setattr(SampleStore, name, timed)
    return spent


def train(root: Path) -> Path:
    with contextlib.redirect_stdout(io.StringIO()):
        main(["fit", "--config", str(REPO / "tests/conf/mixup.yaml"),
              "--trainer.max_epochs", "3", "--trainer.default_root_dir", str(root),
              "--trainer.enable_progress_bar", "false"])  # fmt: skip
    return next(root.glob("lightning_logs/version_*/checkpoints/last.ckpt"))


def evaluate(checkpoint: Path, output: Path, store: bool) -> float:
    MeasurementModule.use_store = store
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        main(["test", "--config", str(REPO / "configs/quickstart/evaluate.yaml"),
              "--model.init_args.checkpoint", str(checkpoint),
              "--model.init_args.output_dir", str(output),
              "--trainer.default_root_dir", str(output.parent / "logs"),
              "--trainer.enable_progress_bar", "false"])  # fmt: skip
    return time.perf_counter() - start


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    spent = timed_store()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        checkpoint = args.checkpoint or train(root / "fit")
        evaluate(checkpoint, root / "warm-up", store=False)  # imports, caches, the data
        times: dict[bool, list[float]] = {True: [], False: []}
        inside: list[float] = []
        for repeat in range(args.repeats):
            for store in (True, False):
                before = spent[0]
                times[store].append(evaluate(checkpoint, root / f"{store}-{repeat}", store))
                if store:
                    inside.append(spent[0] - before)
            rows = (root / f"True-{repeat}" / "samples-rank0.sqlite").stat().st_size
    on, off = statistics.median(times[True]), statistics.median(times[False])
    print(f"quickstart evaluation, {args.repeats} runs each, alternating (median wall time):")
    print(f"  store on : {on:8.2f} s   (runs: {', '.join(f'{t:.2f}' for t in times[True])})")
    print(f"  store off: {off:8.2f} s   (runs: {', '.join(f'{t:.2f}' for t in times[False])})")
    print(f"  ratio on/off: {on / off:.4f}  ({100 * (on / off - 1):+.2f} %)")
    share = statistics.median(inside) / on
    print(f"  inside the store: {statistics.median(inside):.3f} s = {100 * share:.2f} % of a run")
    print(f"  store file: {rows / 1024:.0f} KiB")
    MeasurementModule.use_store = True


if __name__ == "__main__":
    run()

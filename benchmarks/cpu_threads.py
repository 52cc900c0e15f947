"""A short quickstart fit with torch's default threads vs the CLI's chosen count, side by side.

The fit is `configs/quickstart/mixup.yaml` (mixup, SmallCNN width 32 on the digits) cut to
`--epochs` epochs, run through `mixup_robust.cli.main` in this process without a progress
bar or model summary. Each repeat runs every thread count once, in turn, so the counts see
similar load; the table gives the median seconds per fit and the ratio to torch's default.
The counts are: torch's default (what `import torch` picks with OMP_NUM_THREADS unset), the
count the command line chooses (`mixup_robust.threads`, under this environment and
`--threads`), and `--also` (1 by default: the setting for a busy shared machine). The load
average (`os.getloadavg`) before and after is printed: on a machine shared with other work
the ratios say how threads fare under that load, not on an idle machine.

Run from the repository root:
    python benchmarks/cpu_threads.py
    python benchmarks/cpu_threads.py --epochs 10 --repeats 5 --also 1 4
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

_USER_OMP = os.environ.pop("OMP_NUM_THREADS", None)  # torch's own default, measured below
import torch  # noqa: E402

TORCH_DEFAULT = torch.get_num_threads()
if _USER_OMP is not None:
    os.environ["OMP_NUM_THREADS"] = _USER_OMP

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mixup_robust.cli import main  # noqa: E402
from mixup_robust.console import quiet_third_party  # noqa: E402
from mixup_robust.threads import chosen_threads  # noqa: E402


def fit_seconds(threads: int, epochs: int, root: Path) -> float:
    torch.set_num_threads(threads)
    start = time.perf_counter()
    main([
        "fit", "--config", str(REPO / "configs/quickstart/mixup.yaml"),
        "--trainer.max_epochs", str(epochs),
        "--trainer.default_root_dir", str(root),
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
    ])  # fmt: skip
    return time.perf_counter() - start


def main_benchmark() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", default=None, help="as cli.py's --threads")
    parser.add_argument("--also", type=int, nargs="*", default=[1], help="further counts")
    args = parser.parse_args()
    chosen, source = chosen_threads(args.threads, os.environ)
    chosen = torch.get_num_threads() if chosen is None else chosen
    # One run per distinct count, named by every role it plays (torch default, chosen, also).
    roles = [("torch default", TORCH_DEFAULT), (f"chosen ({source})", chosen)]
    roles += [(f"--also {count}", count) for count in args.also]
    counts: dict[str, int] = {}
    for count in dict.fromkeys(count for _, count in roles):
        counts[" = ".join(name for name, c in roles if c == count)] = count
    quiet_third_party()
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {name: [] for name in counts}
    with tempfile.TemporaryDirectory() as tmp:
        fit_seconds(1, 1, Path(tmp) / "warm-up")
        for repeat in range(args.repeats):
            for name, count in counts.items():
                times[name].append(fit_seconds(count, args.epochs, Path(tmp) / f"{repeat}-{name}"))
    load_after = os.getloadavg()
    print(f"\nCPUs available: {len(os.sched_getaffinity(0))}; torch {torch.__version__}; "
          f"{args.epochs}-epoch quickstart mixup fit, {args.repeats} repeats (median)")  # fmt: skip
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}; "
          f"after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")  # fmt: skip
    base = statistics.median(times[next(iter(counts))])  # torch default's run comes first
    print("| run | threads | median s | ratio to torch default | all s |\n|---|---:|---:|---:|---|")
    for name, count in counts.items():
        median = statistics.median(times[name])
        all_s = ", ".join(f"{t:.1f}" for t in times[name])
        print(f"| {name} | {count} | {median:.1f} | {median / base:.2f} | {all_s} |")


if __name__ == "__main__":
    main_benchmark()

"""The test suite's wall time at a reference commit vs. the working tree, one after the other.

The reference (e.g. the commit before the suite was sped up) is checked out into a temporary
git worktree and run with its own pytest settings; then the working tree's suite runs with
its own. Both use the same Python environment. Each run's wall time, test counts (pytest's
summary line) and the load average before and after are printed, then the ratio. The runs
are sequential (a suite uses every core), so on a shared machine compare the loads too.

Run from the repository root:
    python benchmarks/suite_time.py --reference b83489f
    python benchmarks/suite_time.py --reference b83489f -- -m "not slow"
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# pytest -q ends with "1256 passed, 124 warnings in 1159.30s (0:19:19)", with or without "=".
SUMMARY = re.compile(r"^=*\s*(\d+ (?:passed|failed).*?) in [\d.]+s", re.MULTILINE)


def run_suite(root: Path, pytest_args: list[str]) -> tuple[float, str, tuple[float, float]]:
    """Runs `python -m pytest -q` in `root`; returns (seconds, summary line, loads before/after)."""
    environ = {**os.environ, "PYTHONPATH": str(root)}
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args],
        cwd=root, env=environ, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    found = SUMMARY.findall(done.stdout)
    summary = found[-1] if found else "no summary"
    summary = f"{summary} (exit {done.returncode})"
    return seconds, summary, (load_before, os.getloadavg()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", required=True, help="a commit to compare with")
    parser.add_argument("pytest_args", nargs="*", help="after `--`: given to both suites")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        reference = Path(tmp) / "reference"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(reference), args.reference],
            cwd=REPO, check=True,
        )  # fmt: skip
        try:
            rows = [
                (f"reference {args.reference}", *run_suite(reference, args.pytest_args)),
                ("working tree", *run_suite(REPO, args.pytest_args)),
            ]
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(reference)], cwd=REPO)
    print(f"CPUs: {os.cpu_count()}; pytest args: {args.pytest_args or 'none'}")
    print("| suite | wall s | ratio to reference | load before, after | result |")
    print("|---|---:|---:|---|---|")
    base = rows[0][1]
    for name, seconds, summary, (before, after) in rows:
        print(f"| {name} | {seconds:.0f} | {seconds / base:.2f} | {before:.1f}, {after:.1f} | "
              f"{summary} |")  # fmt: skip


if __name__ == "__main__":
    main()

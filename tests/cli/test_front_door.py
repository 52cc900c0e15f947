"""The command line's front door: the top-level help, its own options and the thread count."""

import os
import subprocess
import sys

import pytest
import torch

from mixup_robust.cli_help import HELP
from mixup_robust.launch import own_options, run
from mixup_robust.threads import (
    DEFAULT_MAX_THREADS,
    THREADS_VARIABLE,
    apply_threads,
    available_cpus,
    chosen_threads,
    default_threads,
    load_note,
)
from tests.helpers.cli import REPO, run_cli

HEAVY = ("torch", "lightning", "torchvision", "matplotlib", "jsonargparse")
# What `python cli.py --help` imports, printed by the child after the help exits.
PROBE = (
    "import runpy, sys\n"
    "sys.argv = ['cli.py', '--help']\n"
    "try:\n"
    "    runpy.run_path('cli.py', run_name='__main__')\n"
    "except SystemExit as done:\n"
    "    status = done.code\n"
    "print('STATUS', status)\n"
    f"print('HEAVY', sorted(n for n in sys.modules if n.split('.')[0] in {HEAVY!r}))\n"
)


def child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def test_the_top_level_help_imports_no_heavy_module():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=child_env(), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert "STATUS 0" in done.stdout, done.stdout + done.stderr
    assert "HEAVY []" in done.stdout, done.stdout
    assert "subcommands:" in done.stdout  # the help itself was printed


def test_the_help_says_what_the_project_is_and_where_to_go():
    for needed in (
        "mixup", "Mixup Inference", "adversarial attacks",
        "fit ", "validate ", "test ", "predict ",
        "configs/quickstart/", "configs/cifar10/", "configs/eval/",
        "README.md", "docs/", "--verbose", "--threads", "MIXUP_ROBUST_TRACEBACK",
        "python cli.py fit --help",
    ):  # fmt: skip
        assert needed in HELP, needed


def test_no_help_line_is_cut_mid_sentence():
    """Lightning's help cut `test`'s line after "never run on your"; a wrapped line goes on."""
    dangling = {"the", "a", "an", "to", "your", "of", "on", "and", "or", "for", "with", "its"}
    lines = HELP.splitlines()
    assert max(len(line) for line in lines) <= 100  # no terminal re-wraps or cuts it
    subcommands = lines[lines.index("subcommands:") + 1 :][:4]
    assert [line.split()[0] for line in subcommands] == ["fit", "validate", "test", "predict"]
    for number, line in enumerate(lines):
        if line.strip() and line.split()[-1].lower() in dangling:  # the sentence goes on ...
            following = lines[number + 1] if number + 1 < len(lines) else ""
            assert following.strip(), f"cut line: {line!r}"  # ... on the next line
            assert following not in subcommands, f"cut line: {line!r}"
    for line in subcommands:
        assert line.split()[-1].lower() not in dangling, f"cut line: {line!r}"


def test_help_and_no_arguments(capsys):
    with pytest.raises(SystemExit) as done:
        run(["--help"])
    assert done.value.code == 0 and capsys.readouterr().out == HELP
    with pytest.raises(SystemExit) as done:
        run([])
    assert done.value.code == 2 and "subcommands:" in capsys.readouterr().err


def test_a_subcommands_help_is_lightnings_full_list(capsys):
    with pytest.raises(SystemExit) as done:
        run_cli("fit", "--help")
    assert done.value.code == 0 and "--trainer.max_epochs" in capsys.readouterr().out


def test_own_options_are_taken_out_anywhere():
    rest, verbose, threads = own_options(
        ["fit", "--verbose", "--config", "c.yaml", "--threads", "3"]
    )
    assert (rest, verbose, threads) == (["fit", "--config", "c.yaml"], True, "3")
    assert own_options(["--threads=2", "test"]) == (["test"], False, "2")


# ---------------------------------------------------------------- threads
def test_the_thread_setting_precedence():
    assert chosen_threads("3", {THREADS_VARIABLE: "2", "OMP_NUM_THREADS": "4"}) == (3, "--threads")
    assert chosen_threads(None, {THREADS_VARIABLE: "2", "OMP_NUM_THREADS": "4"})[0] == 2
    assert chosen_threads(None, {"OMP_NUM_THREADS": "4"}) == (None, "OMP_NUM_THREADS")
    count, source = chosen_threads(None, {}, load=0.0)
    assert count == min(available_cpus(), DEFAULT_MAX_THREADS) and source.startswith("default")
    assert chosen_threads(None, {THREADS_VARIABLE: ""})[1].startswith("default")
    for bad in ("0", "two", "-1", ""):
        with pytest.raises(ValueError, match="at least 1"):
            chosen_threads(bad, {})


def test_a_chosen_count_is_set_and_passed_on():
    before = torch.get_num_threads()
    try:
        environ: dict[str, str] = {}
        assert apply_threads("1", environ) == 1 and torch.get_num_threads() == 1
        assert environ["OMP_NUM_THREADS"] == "1"  # DDP's processes and Lightning keep it
        environ = {}
        assert apply_threads(None, environ, load=0.0) == min(available_cpus(), DEFAULT_MAX_THREADS)
        assert "OMP_NUM_THREADS" not in environ  # Lightning still divides CPUs among processes
        assert apply_threads(None, {"OMP_NUM_THREADS": "3"}) is None  # the user's own
    finally:
        torch.set_num_threads(before)


def test_the_default_leaves_the_cores_that_other_work_uses(monkeypatch):
    monkeypatch.setattr("mixup_robust.threads.available_cpus", lambda: 4)
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert [default_threads(load) for load in (0.0, 0.4, 1.0, 2.5, 3.9, 9.0)] == [4, 4, 3, 2, 1, 1]
    monkeypatch.setattr("mixup_robust.threads.available_cpus", lambda: 16)
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert default_threads(0.0) == DEFAULT_MAX_THREADS  # at most 8
    # A cpuset (4 of 64 CPUs) was given to this job: the machine's load is other jobs'.
    monkeypatch.setattr("mixup_robust.threads.available_cpus", lambda: 4)
    monkeypatch.setattr("os.cpu_count", lambda: 64)
    assert default_threads(60.0) == 4


def test_a_count_lowered_by_the_load_gets_one_note(monkeypatch):
    monkeypatch.setattr("mixup_robust.threads.available_cpus", lambda: 2)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    count, source = chosen_threads(None, {}, load=7.0)
    note = load_note(source, count)
    assert count == 1 and note is not None and len(note.splitlines()) == 1
    assert "load 7.0" in note and "1 of 2" in note and "--threads N" in note
    count, source = chosen_threads(None, {}, load=0.2)
    assert count == 2 and load_note(source, count) is None  # not lowered
    assert load_note("--threads", 1) is None  # the user chose


def test_a_bad_thread_count_is_one_line(capsys):
    with pytest.raises(SystemExit) as done:
        run(["--threads", "0", "fit"])
    assert done.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: --threads='0' must be a whole number of threads, at least 1."
    ]

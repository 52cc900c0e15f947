"""The command line's front door (`cli.py`, the `mixup-robust` script).

It answers the top-level `--help` without importing torch, takes its own options
(`--verbose`, `--threads N`), sets the CPU threads (`mixup_robust.threads`), quiets third-party
notices and shows errors as their message (`mixup_robust.console`), and only then imports
and runs the LightningCLI of `mixup_robust.cli`.
"""

import os
import sys

from mixup_robust.cli_help import HELP
from mixup_robust.console import (
    TRACEBACK_VARIABLE,
    VERBOSE_VARIABLE,
    is_set,
    quiet_third_party,
    report_error,
    short_parser_errors,
)
from mixup_robust.threads import apply_threads

COMMAND = "python cli.py"


def own_options(argv: list[str]) -> tuple[list[str], bool, str | None]:
    """Takes `--verbose` and `--threads N` (or `--threads=N`) out of the arguments.

    Returns:
        The remaining arguments for LightningCLI, whether `--verbose` was given, and the value
        of `--threads` (None when absent).
    """
    rest: list[str] = []
    verbose, threads = False, None
    arguments = iter(argv)
    for argument in arguments:
        if argument == "--verbose":
            verbose = True
        elif argument == "--threads":
            threads = next(arguments, "")
        elif argument.startswith("--threads="):
            threads = argument.split("=", 1)[1]
        else:
            rest.append(argument)
    return rest, verbose, threads


def run(argv: list[str] | None = None) -> None:
    """Runs `python cli.py ...` with `argv` (default: the command line's arguments)."""
    arguments, verbose, threads = own_options(list(sys.argv[1:] if argv is None else argv))
    if not arguments or arguments[0] in ("-h", "--help"):
        (sys.stdout if arguments else sys.stderr).write(HELP)
        raise SystemExit(0 if arguments else 2)
    verbose = verbose or is_set(os.environ, VERBOSE_VARIABLE)
    try:
        apply_threads(threads)
    except ValueError as error:
        sys.stderr.write(f"error: {error}\n")
        raise SystemExit(2) from None
    if not verbose:
        quiet_third_party()
        from jsonargparse import ArgumentParser

        short_parser_errors(ArgumentParser, COMMAND)
    if argv is None:  # LightningCLI (and DDP's processes) read the command line itself
        sys.argv[1:] = arguments
        if verbose:
            os.environ[VERBOSE_VARIABLE] = "1"
    from mixup_robust.cli import main  # torch, Lightning: only now

    try:
        main(None if argv is None else arguments)
    except Exception as error:
        report_error(error, show_traceback=verbose or is_set(os.environ, TRACEBACK_VARIABLE))

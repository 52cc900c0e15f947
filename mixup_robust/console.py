"""What a command-line run shows: no third-party noise, and an error's own message first.

- `quiet_third_party` hides, by message and module, the notices a user of this project cannot
  act on: Lightning's advertisement of its logging service and the `LeafSpec` deprecation
  that Lightning's own code triggers in torch.
- `short_parser_errors` makes a config error (a misspelt key, a wrong type) the parser's one
  useful line plus a hint to `--help`, instead of the whole usage text before it.
- `report_error` shows an error raised by a run as its message, without the traceback.

`--verbose` or MIXUP_ROBUST_VERBOSE=1 turns all three off; MIXUP_ROBUST_TRACEBACK=1 brings back
the traceback alone.
"""

import logging
import re
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import NoReturn

VERBOSE_VARIABLE = "MIXUP_ROBUST_VERBOSE"
TRACEBACK_VARIABLE = "MIXUP_ROBUST_TRACEBACK"
_TRUE = {"1", "true", "yes", "on"}

# (message start, logger) of the informational notices hidden; Lightning logs its rank-zero
# messages through these two loggers.
_HIDDEN_NOTICES = ("💡 Tip: For seamless cloud logging",)
_NOTICE_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
# (message regex, category, module regex) of the warnings hidden.
_HIDDEN_WARNINGS = (
    (
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        FutureWarning,
        r"lightning\.pytorch\.utilities\._pytree",
    ),
)


# jsonargparse's framing of a Union's errors, around the one that matters.
_UNION_LINES = (
    "Does not validate against any of the Union subtypes",
    "Subtypes:",
    "Errors:",
    "Given value",
    "- Expected a <class 'NoneType'>",
)


def is_set(environ: Mapping[str, str], variable: str) -> bool:
    """Whether an on/off environment variable is on (1, true, yes, on)."""
    return environ.get(variable, "").strip().lower() in _TRUE


class _DropNotices(logging.Filter):
    """Drops the log records whose message starts with one of the hidden notices."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(_HIDDEN_NOTICES)


def quiet_third_party() -> None:
    """Hides the third-party notices and warnings listed above, and nothing else."""
    for message, category, module in _HIDDEN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    for name in _NOTICE_LOGGERS:
        logging.getLogger(name).addFilter(_DropNotices())


def short_parser_message(message: str) -> str:
    """The useful line of a jsonargparse error message, with the keys and classes it is about.

    `Parser key "model": Does not validate against any of the Union subtypes ... Problem with
    given class_path 'mixup_robust.training.Mixup': Option 'alhpa' is not accepted ...` becomes
    `Option 'alhpa' is not accepted (model > mixup_robust.training.Mixup)`; a required argument
    of the model's (or data's) class left out names its option (`--model.init_args.checkpoint`).
    A message of one or two lines is kept as it is.
    """
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) <= 2:
        return " ".join(lines)
    where: list[str] = []
    details: list[str] = []
    given = None
    for line in lines:
        header = re.match(r"(?:- )?Parser key \"([^\"]+)\":\s*(.*)", line) or re.match(
            r"- Problem with given class_path '([^']+)':\s*(.*)", line
        )
        if header:
            where.append(header.group(1))
            line = header.group(2)
        if line.startswith("Given value:"):
            given = line.removeprefix("Given value:").strip()
        if not line or line.startswith(_UNION_LINES):
            continue
        details.append(line.removeprefix("- "))
    detail = details[0] if details else lines[0]
    if accepted := re.search(r"Option '[^']+' is not accepted", detail):
        detail = accepted.group(0)
    elif detail.startswith("Expected a") and given is not None:
        detail = f"{detail}, got {given}"
    required = re.match(r"the following arguments are required: (.+)", detail)
    if not where:
        return detail
    text = f"{detail} ({' > '.join(where)})"
    if required and len(where) == 2:  # an argument of the model's or data's class
        names = [name.strip() for name in required[1].split(",")]
        options = ", ".join(f"--{where[0]}.init_args.{name}" for name in names)
        text += f": give {options} <value> on the command line or in the config"
    return text


def short_parser_errors(parser_class: type, command: str) -> None:
    """Makes `parser_class.error` print the short message and a hint, then exit with status 2.

    Args:
        parser_class: jsonargparse's `ArgumentParser` (LightningCLI's parser derives from it).
        command: how the user runs the CLI (`python cli.py`), for the hint.
    """
    full_error: Callable[..., NoReturn] = parser_class.error

    def error(parser: object, message: str, ex: Exception | None = None) -> NoReturn:
        if not getattr(parser, "exit_on_error", True):
            full_error(parser, message, ex)  # raises: a caller handles it
        subcommand = getattr(ex, "subcommand_parser", None) or parser
        prog = str(getattr(subcommand, "prog", "")).replace(" [options]", "").split(" ", 1)
        subcommand_name = prog[1] if len(prog) > 1 else ""
        help_command = " ".join(part for part in (command, subcommand_name, "--help") if part)
        sys.stderr.write(
            f"error: {short_parser_message(message)}\n"
            f"hint: `{help_command}` lists the accepted options; --verbose shows the parser's "
            "whole message.\n"
        )
        raise SystemExit(2)

    parser_class.error = error


def report_error(error: BaseException, show_traceback: bool) -> NoReturn:
    """Shows `error` as its message (and type) and exits with status 1.

    Args:
        error: the exception that stopped the run.
        show_traceback: re-raise it, so that Python prints the whole traceback.
    """
    if show_traceback:
        raise error
    from rich.console import Console  # rich: only once an error is to be shown
    from rich.text import Text

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    console.print(Text.assemble(("error: ", "bold red"), f"{type(error).__name__}: {error}"))
    console.print(Text(f"(--verbose or {TRACEBACK_VARIABLE}=1 shows the traceback.)", "dim"))
    raise SystemExit(1)

"""What the command line and config files mean, with no silent reading.

jsonargparse, under LightningCLI, reads two things in a way that changes a run without a word:

- **A list given on the command line is merged by position** with the config's list of the
  same length: `--model.init_args.attacks '[{PGD eps 0.1}, {PGD eps 0.2}]'` over a config with
  two attacks keeps every argument of the config's attacks that the new items do not give
  (`steps`, `name`, ...), so results carry the wrong names and settings. Here such a list
  replaces the config's list: `parse_command_line` puts an empty list for the same key just
  before it (`--key []`), after which nothing is left to merge with; the given items get
  their classes' defaults. Appending stays possible with jsonargparse's `--key+ item`. Items
  given as files (`[configs/attacks/pgd10.yaml]`) and a list given as one file
  (`configs/attacks/mi_paper_oblivious.yaml`) count as such a list.
- **A YAML key given twice** is read as the last one (a repeated `trainer:` block drops the
  first one's `max_epochs`). `STRICT_YAML` is a parser mode whose loader refuses a mapping
  with a repeated key, naming the key and both lines.
- **A key lost to an include.** A file's `config: <file>` (a data block, a recipe) overrides
  the keys written before it in that file, and a dotted key after it whose first part was
  written before it (`model.init_args.optimizer: ...` below a `model:` block) is merged into
  that earlier block, so the include overrides it as well. The loader refuses both, naming
  the key (`check_include_order`).

`parse_command_line` also refuses an out-of-range `seed_everything` in the project's words
(Lightning's message names numpy), before any class is built, and `check_ckpt_path_imports`
checks a resumed checkpoint's import paths before LightningCLI parses (imports) them.
"""

import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml
from jsonargparse import ArgumentParser, Namespace, get_loader, set_loader

from mixup_robust.seeding import check_seed
from mixup_robust.trusted_imports import check_checkpoint_file

STRICT_YAML = "yaml_unique_keys"
# What a value must end with to be read as a config file (an attack, a defense, a list of them).
CONFIG_FILE_SUFFIXES = (".yaml", ".yml", ".json")


class DuplicateKeyError(yaml.YAMLError):
    """A YAML mapping gives one key twice (a YAMLError, so the parser reports it)."""


class IncludeOrderError(yaml.YAMLError):
    """A config file's key would be overridden by the file it includes."""


def strict_yaml_mode() -> str:
    """Registers the `STRICT_YAML` parser mode (once) and returns its name.

    Its loader is jsonargparse's YAML loader after a check for repeated keys.
    """
    if get_loader_or_none(STRICT_YAML) is None:
        set_loader(STRICT_YAML, strict_yaml_load, (yaml.YAMLError,))
    return STRICT_YAML


def get_loader_or_none(mode: str) -> object:
    """The loader registered for a parser mode, or None."""
    try:
        return get_loader(mode)
    except KeyError:
        return None


def strict_yaml_load(value: str, path: str | os.PathLike = "") -> object:
    """Jsonargparse's YAML loading, refusing a mapping that repeats a key.

    Args:
        value: the YAML text (a config file, or a value from the command line).
        path: the file it came from, for the message ('' for the command line).

    Raises:
        DuplicateKeyError: a key appears twice in one mapping.
        IncludeOrderError: a key would be lost to the file's include (`check_include_order`).
    """
    check_unique_keys(value, str(path) if path else "")
    loaded = get_loader("yaml")(value)
    check_include_order(loaded, Path(path) if path else None)
    return loaded


def check_include_order(tree: object, path: Path | None) -> None:
    """Raises `IncludeOrderError` when a key of a config file would be lost to its include.

    Args:
        tree: the file's loaded YAML.
        path: the file (its include is read relative to its folder); None for a value given
            on the command line (relative to the working directory).
    """
    if not isinstance(tree, dict) or not isinstance(tree.get("config"), str):
        return
    names = [str(name) for name in tree]
    at = names.index("config")
    include = tree["config"]
    where = f"{path}: " if path else ""
    before = {name.split(".")[0] for name in names[:at]}
    for name in names[at + 1 :]:
        if "." in name and name.split(".")[0] in before:
            raise IncludeOrderError(
                f"{where}'{name}' after 'config: {include}' is merged into the "
                f"'{name.split('.')[0]}' block written before the include, which the include "
                "overrides: it would be silently lost. Give it on the command line or in a "
                "later --config, or write it in that block if the include does not set it."
            )
    included = _included_keys((path.parent if path else Path()) / include, depth=0)
    for key in _leaf_keys({name: tree[name] for name in names[:at]}):
        clash = next((k for k in included if _related(key, k)), None)
        if clash is not None:
            raise IncludeOrderError(
                f"{where}'{key}' is written before 'config: {include}', which sets "
                f"'{clash}' and wins: the value here would be silently lost. Give it on the "
                "command line or in a later --config instead."
            )


def _included_keys(path: Path, depth: int) -> set[str]:
    """The dotted keys an included file sets, with those of its own include."""
    try:
        tree = yaml.safe_load(path.read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return set()  # the parser reports a missing or broken file
    if not isinstance(tree, dict):
        return set()
    keys = set(_leaf_keys({k: v for k, v in tree.items() if k != "config"}))
    if isinstance(tree.get("config"), str) and depth < 8:
        keys |= _included_keys(path.parent / tree["config"], depth + 1)
    return keys


def _leaf_keys(tree: dict, prefix: str = "") -> Iterator[str]:
    """The dotted keys of a mapping's leaves (a dotted name counts as its parts)."""
    for name, value in tree.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict) and value:
            yield from _leaf_keys(value, f"{key}.")
        else:
            yield key


def _related(key: str, other: str) -> bool:
    """Whether one key is the other or lies inside it."""
    return key == other or other.startswith(f"{key}.") or key.startswith(f"{other}.")


def check_unique_keys(text: str, source: str = "") -> None:
    """Raises `DuplicateKeyError` when a mapping of the YAML `text` repeats a key.

    Syntax errors are left to the loader that follows, which reports them as usual.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return
    pending, seen = [root], set()
    while pending:
        node = pending.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key, item in node.value:
                pending.append(item)
                if not isinstance(key, yaml.ScalarNode):
                    continue
                line = key.start_mark.line + 1
                if key.value in first_line:
                    where = f"{source}: " if source else ""
                    raise DuplicateKeyError(
                        f"{where}the key '{key.value}' is given twice in one block, at lines "
                        f"{first_line[key.value]} and {line}; YAML would silently keep only the "
                        "second (and drop everything under the first). Merge them into one."
                    )
                first_line[key.value] = line
        elif isinstance(node, yaml.SequenceNode):
            pending.extend(node.value)


def replace_list_overrides(args: Sequence[str]) -> list[str]:
    """The arguments with `--key []` before every argument that sets a list of mappings.

    Such a list (class_path / init_args items, sweeps) given on the command line, or in a
    `--config` file after the first one, then replaces the list set before it instead of
    being merged into it item by item. `--key+` (append) and lists of plain values (which
    have nothing to merge) are left alone.
    """
    args = list(args)
    out: list[str] = []
    configs_seen = 0
    for position, argument in enumerate(args):
        key, value = argument, None
        if argument.startswith("--") and "=" in argument:
            key, value = argument.split("=", 1)
        elif argument.startswith("--") and position + 1 < len(args):
            value = args[position + 1]
        if key == "--config" and value is not None:
            if configs_seen:
                for list_key in _list_keys(_read_config(value), base=Path(value).parent):
                    out += [f"--{list_key}", "[]"]
            configs_seen += 1
        elif key.startswith("--") and not key.endswith("+") and value is not None:
            if _is_list_of_mappings(_load(value)) or _is_list_file(value, Path()):
                out += [key, "[]"]
        out.append(argument)
    return out


def _load(value: str) -> object:
    if not value.lstrip().startswith(("[", "-", "{")):
        return None
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return None


def _read_config(value: str) -> object:
    """A `--config` value's contents: a file's YAML, or the YAML given inline."""
    try:
        path = Path(value)
        return yaml.safe_load(path.read_text()) if path.is_file() else _load(value)
    except (OSError, ValueError, yaml.YAMLError):
        return None  # the parser reports it


def _list_keys(tree: object, prefix: str = "", base: Path = Path()) -> Iterator[str]:
    """Dotted keys of `tree` whose value is a list of mappings (or such a list's file).

    Files are read relative to `base`, the folder of the config that names them.
    """
    if not isinstance(tree, dict):
        return
    for name, value in tree.items():
        key = f"{prefix}{name}"
        if _is_list_of_mappings(value) or _is_list_file(value, base):
            yield key
        elif isinstance(value, dict) and name != "config":
            yield from _list_keys(value, f"{key}.", base)


def _is_list_of_mappings(value: object) -> bool:
    """A list with a mapping, or a file of one (`- ../defenses/mi_ol.yaml`), among its items."""
    return isinstance(value, list) and any(
        isinstance(item, dict) or _is_file_name(item) for item in value
    )


def _is_file_name(value: object) -> bool:
    return isinstance(value, str) and value.endswith(CONFIG_FILE_SUFFIXES)


def _is_list_file(value: object, base: Path) -> bool:
    """Whether `value` names a config file (relative to `base`) that holds such a list."""
    if not _is_file_name(value):
        return False
    path = base / str(value)
    try:
        return path.is_file() and _is_list_of_mappings(yaml.safe_load(path.read_text()))
    except (OSError, ValueError, yaml.YAMLError):
        return False  # the parser reports it


def parse_command_line(parser: ArgumentParser, args: Sequence[str] | None) -> Namespace:
    """Parses the CLI's arguments (`sys.argv[1:]` when None) with the checks above."""
    arguments = replace_list_overrides(sys.argv[1:] if args is None else args)
    config = parser.parse_args(arguments)
    subcommand = config.get("subcommand")
    seed = (config.get(subcommand) if subcommand else config).get("seed_everything")
    if seed is not None and not isinstance(seed, bool):
        check_seed(seed, "seed_everything")
    return config


def check_ckpt_path_imports(config: Namespace) -> None:
    """Checks the import paths of the run's `--ckpt_path` (`trusted_imports`), if it has one.

    LightningCLI parses a checkpoint's hyperparameters into the config right after the
    command line, importing every class path in them; this runs before that.
    """
    subcommand = config.get("subcommand")
    ckpt_path = config[subcommand].get("ckpt_path") if subcommand else config.get("ckpt_path")
    if isinstance(ckpt_path, str) and os.path.isfile(ckpt_path):
        check_checkpoint_file(ckpt_path)

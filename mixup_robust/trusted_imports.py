"""What a checkpoint may make Python import: this package, torch and torchvision, no more.

A training checkpoint stores its hyperparameters, and in them import paths: the method's
`_class_path`, `class_path` of its net, optimizer and schedule, and any other dotted string
that jsonargparse would import (it resolves a string such as `pkg.module.name` given for a
class or callable argument by importing `pkg.module`). Evaluating or resuming a checkpoint
rebuilds the method from them, so a checkpoint could import, and so run, any module on
`sys.path`. Before anything is built, every such path is checked here against an allow-list:

- `mixup_robust`, `torch` and `torchvision`, minus the parts of torch that load or run code
  or write files (`torch.hub`, `torch.load`, `torch.jit`, ...); the most specific entry
  decides, as in jsonargparse's own import-path policy;
- Lightning's own instantiator (`lightning.pytorch.cli.instantiate_module`);
- the modules named in the environment variable `MIXUP_ROBUST_TRUSTED_IMPORTS` (comma
  separated, e.g. `mylab,otherlab.nets`), for a user's own classes.

A path outside it is refused by its text alone, before any import. A path inside it is then
followed attribute by attribute, importing only allowed modules, and refused when it passes
through or ends in something defined elsewhere (`mixup_robust.cli.os.system` is `os.system`).
Configs are not checked: a config names what it imports, by design (LightningCLI).
"""

import importlib
import importlib.util
import inspect
import os
from collections.abc import Iterator
from pathlib import Path

import torch

TRUSTED_ENV = "MIXUP_ROBUST_TRUSTED_IMPORTS"
TRUSTED = ("mixup_robust", "torch", "torchvision", "lightning.pytorch.cli.instantiate_module")
# Parts of the trusted packages that load or run code, or write files, when called.
DENIED = (
    "torch.hub",
    "torch.load",
    "torch.save",
    "torch.serialization",
    "torch.jit",
    "torch.package",
    "torch.utils.cpp_extension",
    "torch.utils.model_zoo",
    "torch.ops",
    "torch.library",
    "torch.classes",
    "torch.distributed",
    "torch.multiprocessing",
    "torch.compiler",
    "torch.cuda.memory",
    "torchvision.io",
    "torchvision.datasets",
)
# Keys whose string value is always an import path (Lightning's and jsonargparse's).
PATH_KEYS = ("_class_path", "class_path", "_instantiator")


class UntrustedImportError(ValueError):
    """A checkpoint names code outside the allow-list; nothing of it was imported."""


def trusted_entries() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The allowed and the denied import-path entries, the user's own ones included."""
    extra = os.environ.get(TRUSTED_ENV, "")
    own = tuple(entry.strip() for entry in extra.split(",") if entry.strip())
    for entry in own:
        if not _is_import_path(entry, parts=1):
            raise ValueError(
                f"{TRUSTED_ENV}={extra!r}: {entry!r} is not a module name; give dotted module "
                "names separated by commas (e.g. mylab,otherlab.nets)."
            )
    return (*TRUSTED, *own), DENIED


def is_trusted(path: str) -> bool:
    """Whether the allow-list admits the dotted import path (by its text; nothing imported)."""
    allowed, denied = trusted_entries()
    verdicts = {entry: False for entry in denied} | {entry: True for entry in allowed}
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        verdict = verdicts.get(".".join(parts[:cut]))
        if verdict is not None:
            return verdict
    return False


def check_trusted_imports(hparams: object, source: str | Path) -> None:
    """Raises unless every import path in a checkpoint's hyperparameters is trusted.

    Args:
        hparams: the checkpoint's `hyper_parameters` (nested dicts, lists and values).
        source: the checkpoint, for the message.

    Raises:
        UntrustedImportError: a path outside the allow-list (nothing of it was imported), or
            one that resolves to code outside it.
    """
    for key, path in _import_paths(hparams):
        if not is_trusted(path):
            raise UntrustedImportError(
                f"{source} names {path!r} (at {key}), outside what a checkpoint may import "
                f"({_shown()}); nothing was imported. If the checkpoint is yours and the class "
                f"is in your own module, trust it: export {TRUSTED_ENV}=<module>[,<module>]."
            )
        where = _resolved_location(path)
        if where is not None:
            raise UntrustedImportError(
                f"{source} names {path!r} (at {key}), which resolves to {where}, outside what "
                f"a checkpoint may import ({_shown()}); it was not built."
            )


def _shown() -> str:
    allowed, _ = trusted_entries()
    return ", ".join(entry for entry in allowed if entry != TRUSTED[-1]) + ", less torch.hub & co."


def check_checkpoint_file(file: str | Path) -> None:
    """`check_trusted_imports` on a checkpoint file's hyperparameters (a resumed run's).

    A file that torch cannot read as plain tensors is left to the code that loads it next,
    which reports it.
    """
    try:
        contents = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # not a zip checkpoint, truncated, objects: reported by the loader
        try:
            contents = torch.load(file, map_location="cpu", weights_only=True)
        except Exception:
            return
    if isinstance(contents, dict):
        check_trusted_imports(contents.get("hyper_parameters", {}), file)


def _is_import_path(text: str, parts: int = 2) -> bool:
    """Whether `text` has the form jsonargparse imports: dotted identifiers."""
    names = text.split(".")
    return len(names) >= parts and all(name.isidentifier() for name in names)


def _import_paths(value: object, key: str = "hyper_parameters") -> Iterator[tuple[str, str]]:
    """(where, path) of every string of `value` that jsonargparse could import.

    Values of `PATH_KEYS` always count. Another dotted string counts when its first name is a
    module Python can find (`find_spec` of a top-level name searches `sys.path` and imports
    nothing), so a file name such as `vae.ckpt` is not taken for an import path.
    """
    if isinstance(value, dict):
        for name, item in value.items():
            where = f"{key}.{name}"
            if name in PATH_KEYS and isinstance(item, str):
                yield where, item
            else:
                yield from _import_paths(item, where)
    elif isinstance(value, (list, tuple)):
        for number, item in enumerate(value):
            yield from _import_paths(item, f"{key}[{number}]")
    elif isinstance(value, str) and _is_import_path(value) and _findable(value.split(".")[0]):
        yield key, value


def _findable(top: str) -> bool:
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def _resolved_location(path: str) -> str | None:
    """Where the object at a trusted `path` is defined, if it leaves the allow-list on the way.

    Imports the longest prefix of `path` that is a module (trusted by then), then follows the
    attributes; returns the first module or definition outside the allow-list, or None.
    """
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        break
    else:
        return None  # nothing of it can be imported: the loader fails without running code
    for attribute in parts[cut:]:
        found = getattr(found, attribute, None)
        if found is None:
            return None
        where = _location(found)
        if where is None or not is_trusted(where):
            return where or f"{path} (an object of unknown origin)"
    return None


def _location(found: object) -> str | None:
    if inspect.ismodule(found):
        return found.__name__
    module = getattr(found, "__module__", None)
    if not isinstance(module, str):
        return None
    qualname = getattr(found, "__qualname__", None)
    return f"{module}.{qualname}" if isinstance(qualname, str) else module

"""Files written atomically: a temporary file beside the target, then one rename.

Every file the project writes for later use (results, predictions, figures, checkpoints,
caches) goes through `atomic_file`, so a reader, or a run killed at any moment, finds either
the earlier file or the whole new one, never a half-written one.
"""

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal


def umask_mode() -> int:
    """The mode a plain `open(path, "w")` would give a new file: 0o666 less the umask.

    Temporary files (mkstemp) are created 0600; results and checkpoints on a shared cluster
    must be readable by whoever the umask allows, as any other file the user writes.
    (Reading the umask means setting it for an instant; the project writes from one thread.)
    """
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_file(path: Path, mode: Literal["w", "wb"] = "wb", durable: bool = False) -> Iterator[IO]:
    """An open file whose contents replace `path` in one step when the block succeeds.

    The temporary file is a hidden `.<name>.<random>.tmp` in `path`'s own folder: a rename
    within one file system is atomic, where a move from the system temp folder (maybe another
    file system) would be a copy that a kill can cut short. Before the rename it gets the
    umask's mode (`umask_mode`). On an error the temporary file is removed and `path` is as
    it was; a process killed outright leaves at most the hidden temporary file.

    Args:
        path: the file to write; its folder is created if missing.
        mode: 'w' for text, 'wb' for bytes.
        durable: fsync the data before the rename, so that the new file survives a crash of
            the machine too (checkpoints); results are cheap to write again and skip it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, mode) as file:
            yield file
            if durable:
                file.flush()
                os.fsync(file.fileno())
        os.chmod(temporary, umask_mode())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_atomically(path: Path, text: str) -> None:
    """Writes `text` to `path` atomically (see `atomic_file`)."""
    with atomic_file(path, "w") as file:
        file.write(text)

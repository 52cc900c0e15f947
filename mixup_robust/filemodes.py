"""The mode of files the project writes through a temporary file (results, checkpoints)."""

import os


def umask_mode() -> int:
    """The mode a plain `open(path, "w")` would give a new file: 0o666 less the umask.

    Temporary files (mkstemp) are created 0600; results and checkpoints on a shared cluster
    must be readable by whoever the umask allows, as any other file the user writes.
    (Reading the umask means setting it for an instant; the project writes from one thread.)
    """
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask

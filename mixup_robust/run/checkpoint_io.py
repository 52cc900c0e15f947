"""Checkpoint files written atomically in their own directory, readable as the umask allows."""

import errno
import shutil
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO
from typing_extensions import override

from mixup_robust.atomic import atomic_file

# A full disk, a full quota, a file-size limit: the kernel's "no room for these bytes".
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class CheckpointNoSpaceError(OSError):
    """A checkpoint was not written for lack of space; the earlier files are intact."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Saves a local checkpoint to a temporary file beside it, then renames it into place.

    Lightning's own save goes through an fsspec transaction whose temporary file lives in the
    system temp folder; when that is another file system than the run (a node-local /tmp and
    a shared cluster disk), the final move is a copy, and a job killed during it leaves a
    truncated `last.ckpt`. A rename within one directory is atomic: a kill at any moment
    leaves either the previous checkpoint or the new one. The data is fsynced before the
    rename, and the file gets the umask's mode (a temporary file would stay 0600, unreadable
    by collaborators). Remote paths (s3://, ...) keep Lightning's behaviour.
    """

    @override
    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        protocol = get_filesystem(path).protocol
        local = "file" in (protocol if isinstance(protocol, tuple) else (protocol,))
        if storage_options is not None or not local:
            return super().save_checkpoint(checkpoint, path, storage_options)
        try:
            with atomic_file(Path(path), durable=True) as file:
                torch.save(checkpoint, file)
        except Exception as error:
            cause = _no_room(error)
            if cause is None:
                raise
            raise CheckpointNoSpaceError(no_space_message(Path(path), cause)) from None
        return None


def _no_room(error: BaseException) -> OSError | None:
    """The out-of-space OSError of an error's chain (torch wraps it in a RuntimeError)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in NO_ROOM:
            return current
        current = current.__cause__ or current.__context__
    return None


def earlier_checkpoint(path: Path) -> Path | None:
    """The checkpoint a failed save of `path` leaves: `path` itself, last.ckpt or the newest."""
    if path.is_file():
        return path
    if (path.parent / "last.ckpt").is_file():
        return path.parent / "last.ckpt"
    found = [p for p in path.parent.glob("*.ckpt") if p.is_file()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def no_space_message(path: Path, cause: OSError) -> str:
    """One line: which checkpoint was not written, why, and which one is intact."""
    try:
        free = f"{shutil.disk_usage(path.parent).free / 2**20:.0f} MiB free there"
    except OSError:
        free = "free space unknown"
    earlier = earlier_checkpoint(path)
    then = (
        f"the earlier checkpoint {earlier} is intact: free some space (or raise the quota), "
        f"then resume with --ckpt_path {earlier}."
        if earlier is not None
        else "no earlier checkpoint of this run is on disk: free some space and train again."
    )
    return (
        f"Out of disk space: the checkpoint {path} was not written "
        f"({cause.strerror or errno.errorcode.get(cause.errno or 0, cause)}; {free}); {then}"
    )

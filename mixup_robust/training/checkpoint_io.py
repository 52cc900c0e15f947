"""Checkpoint files written atomically in their own directory, readable as the umask allows."""

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO
from typing_extensions import override

from mixup_robust.atomic import atomic_file


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
        with atomic_file(Path(path), durable=True) as file:
            torch.save(checkpoint, file)
        return None

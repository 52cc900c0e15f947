"""The one atomic writer (mixup_robust/atomic.py): whole files, the umask's mode, no leftovers."""

import errno
import io
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from mixup_robust.atomic import atomic_file, write_atomically
from mixup_robust.data import TinyImageNetDataModule
from mixup_robust.run.checkpoint_io import AtomicCheckpointIO, CheckpointNoSpaceError


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_appears_whole_with_the_umask_mode(tmp_path, umask_022):
    target = tmp_path / "new" / "results.json"  # the folder is made
    write_atomically(target, "[1, 2]\n")
    with atomic_file(tmp_path / "blob.bin") as file:
        file.write(b"\x00\x01")
    assert target.read_text() == "[1, 2]\n" and (tmp_path / "blob.bin").read_bytes() == b"\x00\x01"
    assert mode(target) == mode(tmp_path / "blob.bin") == 0o644
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["blob.bin", "new", "results.json"]


def test_a_failed_write_keeps_the_earlier_file_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "results.csv"
    target.write_text("earlier run\n")
    with pytest.raises(RuntimeError, match="disk full"), atomic_file(target, "w") as file:
        file.write("half of the new")
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".results.csv.")]
        raise RuntimeError("disk full")
    assert target.read_text() == "earlier run\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.csv"]


def test_durable_files_are_synced_before_they_are_renamed(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda *a: events.append("replace") or real_replace(*a))
    write_atomically(tmp_path / "a.json", "{}")
    assert events == ["replace"]  # results are cheap to write again: no fsync
    events.clear()
    AtomicCheckpointIO().save_checkpoint({"w": torch.ones(3)}, tmp_path / "last.ckpt")
    assert events == ["fsync", "replace"]
    assert torch.equal(torch.load(tmp_path / "last.ckpt", weights_only=True)["w"], torch.ones(3))


def test_the_tiny_imagenet_cache_gets_the_umask_mode(tmp_path, umask_022):
    """It used to keep mkstemp's 0600, unreadable to the others sharing a data folder."""
    cache = tmp_path / "train_uint8.npz"
    images = np.zeros((2, 3, 64, 64), dtype=np.uint8)
    TinyImageNetDataModule(root=str(tmp_path))._write_cache(cache, images, "key")
    assert mode(cache) == 0o644
    with np.load(cache) as stored:
        assert str(stored["key"]) == "key" and np.array_equal(stored["images"], images)


class FullDisk(io.RawIOBase):
    """A file on a disk with `room` bytes left: later writes fail as the kernel's would."""

    def __init__(self, file, room: int) -> None:
        self.file, self.room = file, room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.file.write(data)


@pytest.mark.parametrize("name", ["last.ckpt", "best-epoch=3-step=80.ckpt"])
def test_a_save_onto_a_full_disk_says_so_in_one_line_and_names_the_intact_checkpoint(
    tmp_path, monkeypatch, name
):
    """torch reports a full disk as a RuntimeError ending in "unexpected pos N vs M"."""
    io_ = AtomicCheckpointIO()
    io_.save_checkpoint({"w": torch.zeros(1000)}, tmp_path / "last.ckpt")
    real_save = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, file: real_save(obj, FullDisk(file, 1000)))
    with pytest.raises(CheckpointNoSpaceError) as raised:
        io_.save_checkpoint({"w": torch.ones(1000)}, tmp_path / name)
    message = str(raised.value)
    assert "\n" not in message and "unexpected pos" not in message
    assert message.startswith(f"Out of disk space: the checkpoint {tmp_path / name} was not")
    assert "No space left on device" in message
    assert f"the earlier checkpoint {tmp_path / 'last.ckpt'} is intact" in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    monkeypatch.undo()
    earlier = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert torch.equal(earlier["w"], torch.zeros(1000))
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no partial file left


def test_other_save_errors_pass_through(tmp_path, monkeypatch):
    def broken(obj, file):
        raise RuntimeError("cannot pickle this")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(RuntimeError, match="cannot pickle this"):
        AtomicCheckpointIO().save_checkpoint({"w": 1}, tmp_path / "last.ckpt")

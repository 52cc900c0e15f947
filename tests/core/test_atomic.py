"""The one atomic writer (mixup_robust/atomic.py): whole files, the umask's mode, no leftovers."""

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from mixup_robust.atomic import atomic_file, write_atomically
from mixup_robust.data import TinyImageNetDataModule
from mixup_robust.training.checkpoint_io import AtomicCheckpointIO


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

"""AtomicCheckpointIO and its helpers (lightning_lstm/checkpoint_io.py) on real files, a real full disk and a real
read-only filesystem: small tmpfs mounts (the tests run as root; elsewhere they skip and say why)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_lstm.checkpoint_io import (
    DEFAULT_FOLDER_KEY,
    AtomicCheckpointIO,
    CheckpointWriteError,
    FolderNotWritableError,
    check_writable,
    is_temporary,
    link_atomically,
    remove_stale_temporaries,
    with_atomic_checkpoint_io,
    write_atomically,
)
from tests.helpers import REPO, clean_env, read_only, remount, tmpfs


def state(value: float, numel: int = 1000) -> dict[str, torch.Tensor]:
    return {"weights": torch.full((numel,), value), "global_step": torch.tensor(int(value))}


def loads(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def test_a_save_replaces_the_old_file_and_leaves_nothing_beside_it_or_in_the_temp_folder(tmp_path, monkeypatch):
    temp_folder = tmp_path / "system_tmp"
    temp_folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_folder))  # where fsspec's transaction would write
    io = AtomicCheckpointIO()
    final = tmp_path / "run" / "checkpoints" / "last.ckpt"
    io.save_checkpoint(state(1.0), final)
    io.save_checkpoint(state(2.0), final)
    assert torch.equal(loads(final)["weights"], torch.full((1000,), 2.0))
    assert os.listdir(final.parent) == ["last.ckpt"]
    assert os.listdir(temp_folder) == []
    umask = os.umask(0)
    os.umask(umask)
    assert final.stat().st_mode & 0o777 == 0o644 & ~umask  # as a plain open() would create it, not mkstemp's 0600


def test_a_write_that_fails_midway_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    final = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint(state(1.0), final)
    before = final.read_bytes()

    def half_then_fail(file) -> None:
        file.write(b"\0" * (1 << 20))
        raise RuntimeError("serialisation failed halfway")

    with pytest.raises(RuntimeError, match="halfway"):  # not an OSError: passed on as it is
        write_atomically(final, half_then_fail)
    assert final.read_bytes() == before
    assert os.listdir(tmp_path) == ["last.ckpt"]


def test_a_full_disk_is_refused_by_path_and_key_and_keeps_the_last_complete_checkpoint(tmp_path):
    with tmpfs(tmp_path / "disk", size="1m") as disk:
        folder = disk / "default" / "version_0" / "checkpoints"
        io = AtomicCheckpointIO(folder_key="trainer.logger.init_args.save_dir")
        io.save_checkpoint(state(1.0, numel=50_000), folder / "last.ckpt")  # 200 kB: fits
        before, free = (folder / "last.ckpt").read_bytes(), os.statvfs(disk).f_bfree
        with pytest.raises(CheckpointWriteError) as raised:
            io.save_checkpoint(state(2.0, numel=500_000), folder / "last.ckpt")  # 2 MB: ENOSPC, for real
        message = str(raised.value)
        assert raised.value.errno == errno.ENOSPC
        assert raised.value.filename == str(folder / "last.ckpt")
        key = "trainer.logger.init_args.save_dir"
        for words in (str(folder / "last.ckpt"), "the disk is full", key, "(last.ckpt)"):
            assert words in message, (words, message)
        assert "\n" not in message
        assert (folder / "last.ckpt").read_bytes() == before
        assert torch.equal(loads(folder / "last.ckpt")["weights"], torch.full((50_000,), 1.0))
        assert os.listdir(folder) == ["last.ckpt"]
        assert os.statvfs(disk).f_bfree == free  # the partial temporary file is gone, its space given back


def test_a_read_only_folder_is_refused_by_path_and_key_and_keeps_its_checkpoint(tmp_path):
    with tmpfs(tmp_path / "disk", size="4m") as disk:
        io = AtomicCheckpointIO()
        io.save_checkpoint(state(1.0), disk / "checkpoints" / "best.ckpt")
        remount(disk, "ro")
        with pytest.raises(CheckpointWriteError) as raised:
            io.save_checkpoint(state(2.0), disk / "checkpoints" / "best.ckpt")
        assert raised.value.errno == errno.EROFS
        assert "read-only filesystem" in str(raised.value) and DEFAULT_FOLDER_KEY in str(raised.value)
        assert loads(disk / "checkpoints" / "best.ckpt")["global_step"] == 1
        with pytest.raises(CheckpointWriteError, match="new_run/checkpoints/last.ckpt: the folder is on a read-only"):
            io.save_checkpoint(state(2.0), disk / "new_run" / "checkpoints" / "last.ckpt")  # mkdir fails


KILLED_WRITER = """
import os, sys, time
from lightning_lstm.checkpoint_io import write_atomically

def write_then_hang(file):
    file.write(b"partial" * 100_000)
    file.flush()
    print("writing", flush=True)
    time.sleep(600)

write_atomically(sys.argv[1], write_then_hang)
"""


def test_a_killed_writers_temporary_is_never_a_checkpoint_and_is_removed_unless_a_live_writer_holds_it(tmp_path):
    final = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint(state(1.0), final)
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(final)], cwd=REPO, env=clean_env(), stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline().strip() == "writing"
        writer.send_signal(signal.SIGKILL)
        assert writer.wait(timeout=30) == -signal.SIGKILL
    finally:
        writer.kill()
    (left,) = [p for p in tmp_path.iterdir() if p != final]
    assert is_temporary(left) and not left.name.endswith(".ckpt") and left.stat().st_size == 700_000
    assert sorted(tmp_path.glob("*.ckpt")) == [final] and loads(final)["global_step"] == 1

    # A second, live writer is half-way through its own temporary file while the cleaner runs.
    started, release = threading.Event(), threading.Event()

    def slow(file) -> None:
        started.set()
        assert release.wait(60)
        torch.save(state(2.0), file)

    thread = threading.Thread(target=write_atomically, args=(tmp_path / "best.ckpt", slow))
    thread.start()
    assert started.wait(60)
    live = [p for p in tmp_path.iterdir() if is_temporary(p) and p != left]
    assert len(live) == 1
    assert remove_stale_temporaries(tmp_path) == [left]
    assert live[0].exists() and not left.exists()
    release.set()
    thread.join(60)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.ckpt", "last.ckpt"]
    assert remove_stale_temporaries(tmp_path) == []


def test_link_atomically_turns_a_file_into_a_relative_link_in_one_rename(tmp_path):
    io = AtomicCheckpointIO()
    io.save_checkpoint(state(1.0), tmp_path / "last.ckpt")
    io.save_checkpoint(state(2.0), tmp_path / "best-epoch001-step2.ckpt")
    link_atomically(tmp_path / "best-epoch001-step2.ckpt", tmp_path / "last.ckpt")
    assert os.readlink(tmp_path / "last.ckpt") == "best-epoch001-step2.ckpt"
    assert loads(tmp_path / "last.ckpt")["global_step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best-epoch001-step2.ckpt", "last.ckpt"]


def test_a_trainer_with_the_plugin_writes_every_checkpoint_through_it(tmp_path, monkeypatch):
    temp_folder = tmp_path / "system_tmp"
    temp_folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_folder))
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints", save_last=True, every_n_train_steps=2, save_top_k=-1)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        plugins=[AtomicCheckpointIO()],
        callbacks=[checkpoint],
        max_steps=6,
        limit_val_batches=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
    started = time.time()
    trainer.fit(BoringModel())
    trainer.save_checkpoint(tmp_path / "checkpoints" / "manual.ckpt")
    files = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert files == ["epoch=0-step=2.ckpt", "epoch=0-step=4.ckpt", "epoch=0-step=6.ckpt", "last.ckpt", "manual.ckpt"]
    assert {name: loads(tmp_path / "checkpoints" / name)["global_step"] for name in files}["last.ckpt"] == 6
    assert all((tmp_path / "checkpoints" / name).stat().st_mtime >= started - 1 for name in files)
    assert os.listdir(temp_folder) == []


def test_check_writable_creates_the_folder_or_names_it_and_the_key(tmp_path):
    check_writable(tmp_path / "runs" / "new", "trainer.logger.init_args.save_dir")
    assert (tmp_path / "runs" / "new").is_dir() and not any((tmp_path / "runs" / "new").iterdir())  # no probe left
    with read_only(tmp_path / "shared") as shared:
        with pytest.raises(FolderNotWritableError) as raised:
            check_writable(shared / "runs", "trainer.default_root_dir")
    assert raised.value.errno == errno.EROFS
    assert str(raised.value) == (
        f"cannot write to {shared / 'runs'}: the folder is on a read-only filesystem ([Errno 30] Read-only file "
        "system). Make it writable, or set trainer.default_root_dir to another folder."
    )


def test_the_plugin_is_added_unless_a_checkpoint_io_is_configured():
    (added,) = with_atomic_checkpoint_io(None)
    assert isinstance(added, AtomicCheckpointIO)
    lightnings = TorchCheckpointIO()
    assert with_atomic_checkpoint_io(lightnings) == [lightnings]
    assert with_atomic_checkpoint_io([lightnings]) == [lightnings]
    trainer = pl.Trainer(plugins=with_atomic_checkpoint_io(), logger=False, enable_checkpointing=False)
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)

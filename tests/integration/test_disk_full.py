"""A full disk and a read-only run folder during ``fit``, for real, through the command line.

- Disk full: the run folder is a tmpfs sized for the first epoch's two checkpoints and half of a third, so the first
  write of the second epoch hits ENOSPC for real. The run stops with one message naming the file, the reason and the
  config key (``trainer.logger.init_args.save_dir``); the first epoch's checkpoints are untouched and load; no
  temporary file is left; ``spikes.json`` (written after the failed write gave its space back) and the event file
  read back; no second checkpoint is attempted on the way out.
- A checkpoint folder that turns read-only mid-run (a read-only bind mount, which stops root too) stops the run the
  same way; a run folder that is read-only from the start is refused before training, naming the folder and the key.
"""

from __future__ import annotations

import errno
import json
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_lstm.checkpoint_io import CheckpointWriteError, FolderNotWritableError
from lightning_lstm.cli import build_cli
from tests.helpers import bind_read_only, read_only, tiny_fit_args, tmpfs, unmount, write_weekly_sine

pytestmark = pytest.mark.usefixtures("one_thread")

STEPS_PER_EPOCH = 4


def fit_args(save_dir: Path, csv: Path, *extra: str) -> list[str]:
    return [
        "fit",
        *tiny_fit_args(
            save_dir,
            f"--data.path={csv}",
            "--data.target_columns=[value]",
            "--data.lookback=10",
            "--data.horizon=2",
            "--data.batch_size=16",
            "--data.window_norm=none",
            "--model.hidden_size=96",  # about 450 kB per checkpoint (weights and Adam moments)
            f"--trainer.limit_train_batches={STEPS_PER_EPOCH}",
            "--trainer.limit_val_batches=2",
            "--trainer.max_epochs=3",
            "--forecast_plot.every_n_epochs=0",
            *extra,
        ),
    ]


def steps(folder: Path) -> dict[str, int]:
    """Every checkpoint in ``folder`` with its global step (each must load)."""
    return {p.name: torch.load(p, weights_only=True)["global_step"] for p in sorted(folder.glob("*.ckpt"))}


def check_outputs_read_back(run: Path, reason: str) -> None:
    report = json.loads((run / "spikes.json").read_text())
    assert reason in report["stop_reason"], report["stop_reason"]
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("val/loss")][:1] == [STEPS_PER_EPOCH - 1]  # epoch 0's validation


def test_a_full_disk_stops_the_run_with_one_message_and_keeps_the_last_complete_checkpoint(tmp_path: Path) -> None:
    csv = write_weekly_sine(tmp_path / "series.csv", steps=300)
    build_cli(fit_args(tmp_path / "measure", csv, "--trainer.max_epochs=1"))  # one checkpoint's size on this torch
    size = (tmp_path / "measure" / "default" / "version_0" / "checkpoints" / "last.ckpt").stat().st_size
    with tmpfs(tmp_path / "disk", size=f"{int(2.5 * size) // 1024 + 64}k") as disk:
        with pytest.raises(CheckpointWriteError) as raised:
            build_cli(fit_args(disk, csv))
        run = disk / "default" / "version_0"
        message = str(raised.value)
        print(f"\nthe user sees: {type(raised.value).__name__}: {message}")
        assert raised.value.errno == errno.ENOSPC
        for words in (str(run / "checkpoints"), "the disk is full", "trainer.logger.init_args.save_dir"):
            assert words in message, (words, message)
        assert "\n" not in message
        left = steps(run / "checkpoints")
        sizes = {p.name: p.stat().st_size for p in (run / "checkpoints").iterdir()}
        print(f"left on the full disk: {sizes}; global steps {left}")
        assert left == {f"best-epoch000-step{STEPS_PER_EPOCH}.ckpt": STEPS_PER_EPOCH, "last.ckpt": STEPS_PER_EPOCH}
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == sorted(left)  # no temporary file
        check_outputs_read_back(run, "CheckpointWriteError")


class ReadOnlyFromEpoch(pl.Callback):
    """Test-only: at the start of epoch ``epoch``, make the run's checkpoint folder read-only."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.folder: Path | None = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            self.folder = Path(trainer.checkpoint_callback.dirpath)
            failed = bind_read_only(self.folder)
            if failed:
                pytest.skip(f"cannot make {self.folder} read-only with a bind mount (needs root): {failed}")


def test_a_checkpoint_folder_turned_read_only_mid_run_stops_it_by_name(tmp_path: Path) -> None:
    csv = write_weekly_sine(tmp_path / "series.csv", steps=300)
    turn = json.dumps({"class_path": f"{__name__}.ReadOnlyFromEpoch", "init_args": {"epoch": 1}})
    run = tmp_path / "default" / "version_0"
    try:
        with pytest.raises(CheckpointWriteError) as raised:
            build_cli(fit_args(tmp_path, csv, f"--trainer.callbacks+={turn}"))
        message = str(raised.value)
        print(f"\nthe user sees: {type(raised.value).__name__}: {message}")
        assert raised.value.errno == errno.EROFS
        assert "read-only filesystem" in message and "trainer.logger.init_args.save_dir" in message
        assert str(run / "checkpoints") in message
        assert steps(run / "checkpoints") == {
            f"best-epoch000-step{STEPS_PER_EPOCH}.ckpt": STEPS_PER_EPOCH,
            "last.ckpt": STEPS_PER_EPOCH,
        }
    finally:
        unmount(run / "checkpoints")
    check_outputs_read_back(run, "CheckpointWriteError")


def test_a_read_only_run_folder_is_refused_before_training(tmp_path: Path) -> None:
    csv = write_weekly_sine(tmp_path / "series.csv", steps=300)
    with read_only(tmp_path / "shared") as shared:
        with pytest.raises(FolderNotWritableError) as raised:
            build_cli(fit_args(shared / "runs", csv))
        message = str(raised.value)
        print(f"\nthe user sees: {type(raised.value).__name__}: {message}")
        assert str(shared / "runs") in message and "trainer.logger.init_args.save_dir" in message
        assert "read-only filesystem" in message
        assert not any(shared.iterdir())
        with pytest.raises(FolderNotWritableError, match="checkpoint.dirpath"):
            build_cli(fit_args(tmp_path / "runs", csv, f"--checkpoint.dirpath={shared / 'checkpoints'}"))

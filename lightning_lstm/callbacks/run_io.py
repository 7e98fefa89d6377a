"""Where the callbacks write: the run folder, the TensorBoard writer (one event per step's scalars), and every rank's
objects on one rank.

One lookup for all callbacks. ``trainer.log_dir`` is a collective under DDP (it broadcasts rank zero's folder):
every rank must ask for :func:`run_dir`, never rank zero alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.compat.proto.summary_pb2 import Summary

from lightning_lstm.distributed import gather_objects

if TYPE_CHECKING:
    import lightning.pytorch as pl
    from torch.utils.tensorboard import SummaryWriter

__all__ = ["gather_objects", "run_dir", "tensorboard_writer", "write_scalars"]


def run_dir(trainer: pl.Trainer) -> Path:
    """The run's folder (``<save_dir>/<name>/version_<n>``), or ``default_root_dir`` without a logger."""
    return Path(trainer.log_dir or trainer.default_root_dir)


def tensorboard_writer(trainer: pl.Trainer) -> SummaryWriter | None:
    """The first TensorBoard logger's writer on rank zero; ``None`` on other ranks or without a TensorBoard logger."""
    if not trainer.is_global_zero:
        return None
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


def write_scalars(writer: SummaryWriter, values: Mapping[str, float], step: int | None) -> None:
    """``values`` (tag -> number) of one step as one event: what ``add_scalar`` per tag writes (the same series in
    TensorBoard), in one protobuf and one pure-Python checksum on TensorBoard's writer thread instead of one each."""
    if writer.file_writer is None:  # the writer was closed: add_scalar reopens it
        for tag, value in values.items():
            writer.add_scalar(tag, value, step)
        return
    summary = Summary(value=[Summary.Value(tag=tag, simple_value=float(value)) for tag, value in values.items()])
    writer.file_writer.add_summary(summary, step)

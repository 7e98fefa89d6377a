"""Checkpoint plumbing for the CLI: ``--ckpt_path last`` across run folders, and a monitor when there is no validation.

Runs live in ``<save_dir>/<name>/version_<n>/`` with checkpoints in ``checkpoints/`` (``best-*.ckpt``, ``last.ckpt``).
Lightning resolves ``ckpt_path="last"`` only inside the *new* run's folder (``version_<n+1>/checkpoints``), which is
empty when a run starts, so ``fit --ckpt_path last`` would silently train from scratch. :func:`find_last_checkpoint`
looks in every run folder of the experiment instead; the resumed run logs to a new ``version_<n+1>`` folder and
continues the epoch and step counts of the checkpoint. (An explicit path works as well and, unlike ``last``, also
lets LightningCLI take the model's hyperparameters from the checkpoint instead of the config.)
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_warn

log = logging.getLogger(__name__)

TRAIN_MONITOR = "train/loss_epoch"


def checkpoint_folders(trainer: pl.Trainer) -> list[Path]:
    """Folders that may hold an earlier ``last.ckpt``: explicit ``dirpath`` s, ``<save_dir>/<name>/*/checkpoints``."""
    folders = [
        Path(callback.dirpath)
        for callback in trainer.checkpoint_callbacks
        if isinstance(callback, ModelCheckpoint) and callback.dirpath is not None
    ]
    logger = trainer.logger
    if logger is not None and logger.save_dir is not None:
        experiment = Path(logger.save_dir) / str(logger.name or "")
        folders += sorted(experiment.glob("*/checkpoints"))
    else:
        folders.append(Path(trainer.default_root_dir) / "checkpoints")
    return folders


def find_last_checkpoint(trainer: pl.Trainer) -> str | None:
    """The most recently written ``last*.ckpt`` of any run of this experiment, or None when there is none."""
    candidates = [path for folder in checkpoint_folders(trainer) for path in folder.glob("last*.ckpt")]
    if not candidates:
        return None
    return str(max(candidates, key=lambda path: (path.stat().st_mtime_ns, str(path))))


def check_readable(ckpt_path: str) -> None:
    """A corrupt or truncated file is refused by name before Lightning's restore fails deep inside torch.load."""
    path = Path(ckpt_path)
    if not path.is_file():
        return  # Lightning raises FileNotFoundError naming the path
    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # mmap: no full read of large files
    except Exception as err:  # noqa: BLE001 - any failure means the same thing to the user
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"ckpt_path: {path} is not a readable checkpoint ({type(err).__name__}: {first_line[:200]}). "
            "Pass a .ckpt written by fit (runs/<name>/version_<n>/checkpoints/), or 'last'."
        ) from err


SPECIAL_PATHS = ("last", "best", "hpc", "registry")
"""``ckpt_path`` values Lightning (or :func:`resolve_ckpt_path`) turns into a file itself."""


def resolve_ckpt_path(trainer: pl.Trainer, ckpt_path: str | None) -> str | None:
    """``"last"`` becomes the newest ``last.ckpt`` of earlier runs, checked by :func:`check_readable`.

    Any other value is returned as it is: a file path was checked while the CLI parsed it (before LightningCLI reads
    its hyperparameters), so each subcommand checks its checkpoint once.
    """
    if ckpt_path != "last":
        return ckpt_path
    found = find_last_checkpoint(trainer)
    if found is None:
        return ckpt_path  # Lightning warns that there is nothing to resume and trains from scratch
    check_readable(found)
    log.info("--ckpt_path last: resuming from %s", found)
    return found


def monitor_train_loss_without_validation(trainer: pl.Trainer, has_validation: bool) -> None:
    """Without validation, checkpoints watching a ``val/`` metric keep the best ``train/loss_epoch`` instead.

    ``has_validation``: whether validation runs (:func:`lightning_lstm.model.module.validation_runs`).

    Otherwise no ``best-*.ckpt`` is ever written and ``ckpt_path="best"`` fails (the scheduler makes the same switch
    in :meth:`LSTMForecaster.configure_optimizers`).
    """
    if has_validation:
        return
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and (callback.monitor or "").startswith("val/"):
            rank_zero_warn(
                f"checkpoint.monitor is {callback.monitor!r} but there is no validation split: the best checkpoint "
                f"follows {TRAIN_MONITOR!r} instead. Set data.val_fraction > 0 to select on held-out data."
            )
            callback.monitor = TRAIN_MONITOR

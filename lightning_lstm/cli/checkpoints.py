"""Checkpoint plumbing for the CLI: ``--ckpt_path last`` across run folders, and a monitor when there is no validation.

Lightning resolves ``ckpt_path="last"`` only inside the *new* run's folder (``version_<n+1>/checkpoints``), which is
empty when a run starts, so ``fit --ckpt_path last`` would silently train from scratch. :func:`find_last_checkpoint`
looks in every run folder of the experiment instead; with nothing to resume it fails naming the folders it searched,
and a checkpoint that does not load is refused naming the intact checkpoints beside it, with their global steps.

Before ``fit``, :func:`prepare_run_folders` refuses an unwritable run or checkpoint folder naming the config key that
sets it, tells the CheckpointIO that key (named if a write fails later, e.g. on a full disk) and removes the temporary
files of checkpoint writes that were killed (lightning_lstm/checkpoint_io.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_warn

from lightning_lstm.checkpoint_io import AtomicCheckpointIO, check_writable, remove_stale_temporaries

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


def find_last_checkpoint(trainer: pl.Trainer) -> str:
    """The most recently written ``last*.ckpt`` of any run of this experiment (a killed write's ``*.tmp`` never is).

    Raises:
        FileNotFoundError: there is none; the message names the folders searched.
    """
    folders = checkpoint_folders(trainer)
    candidates = [path for folder in folders for path in folder.glob("last*.ckpt")]
    if not candidates:
        existing = ", ".join(str(folder) for folder in folders if folder.is_dir()) or "none of them exists yet"
        raise FileNotFoundError(
            f"--ckpt_path last: no last.ckpt to resume from in {searched_places(trainer)} (searched: {existing}). "
            "Leave out --ckpt_path to train from scratch, or pass a checkpoint file: --ckpt_path PATH."
        )
    return str(max(candidates, key=lambda path: (path.stat().st_mtime_ns, str(path))))


def searched_places(trainer: pl.Trainer) -> str:
    """Where ``--ckpt_path last`` looks, as configured: explicit ``dirpath`` s and the run folders' pattern."""
    places = [str(c.dirpath) for c in trainer.checkpoint_callbacks if isinstance(c, ModelCheckpoint) and c.dirpath]
    logger = trainer.logger
    if logger is not None and logger.save_dir is not None:
        places.append(str(Path(logger.save_dir) / str(logger.name or "") / "*" / "checkpoints"))
    else:
        places.append(str(Path(trainer.default_root_dir) / "checkpoints"))
    return " and ".join(dict.fromkeys(places))


def global_step(path: Path) -> int | None:
    """The global step stored in checkpoint ``path``, or None when it does not load (memory-mapped: no full read)."""
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["global_step"])
    except Exception:  # noqa: BLE001 - unreadable for whatever reason: not an intact checkpoint
        return None


def intact_beside(path: Path) -> str:
    """``"intact checkpoints beside it: a.ckpt (global step 30), ..."``: those in ``path``'s folder that load."""
    steps = {other.name: global_step(other) for other in sorted(path.parent.glob("*.ckpt")) if other != path}
    intact = [f"{name} (global step {step})" for name, step in steps.items() if step is not None]
    return f"intact checkpoints beside it: {', '.join(intact)}" if intact else "no intact checkpoint beside it"


def check_readable(ckpt_path: str) -> None:
    """A corrupt or truncated file is refused by name before Lightning's restore fails deep inside torch.load."""
    path = Path(ckpt_path)
    if not path.is_file():
        return  # Lightning raises FileNotFoundError naming the path
    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # mmap: no full read of large files
    except Exception as err:  # any failure means the same thing to the user
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"ckpt_path: {path} is not a readable checkpoint ({type(err).__name__}: {first_line[:200]}); "
            f"{intact_beside(path)}. Pass one with --ckpt_path, or another .ckpt written by fit."
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


def prepare_run_folders(trainer: pl.Trainer) -> None:
    """Before fit: refuse an unwritable run or checkpoint folder by name and key, give the CheckpointIO the key that
    sets the checkpoint folder, and remove the temporary files of killed checkpoint writes."""
    logger = trainer.logger
    if logger is not None and logger.save_dir is not None:
        check_writable(logger.save_dir, "trainer.logger.init_args.save_dir")
    else:
        check_writable(trainer.default_root_dir, "trainer.default_root_dir")
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath is not None:
            check_writable(callback.dirpath, "checkpoint.dirpath")
    io = trainer.strategy.checkpoint_io
    if isinstance(io, AtomicCheckpointIO):
        io.folder_key = checkpoint_folder_key(trainer)
    if trainer.is_global_zero:
        for folder in checkpoint_folders(trainer):
            remove_stale_temporaries(folder)


def checkpoint_folder_key(trainer: pl.Trainer) -> str:
    """The config key that sets this run's checkpoint folder."""
    if any(isinstance(c, ModelCheckpoint) and c.dirpath is not None for c in trainer.checkpoint_callbacks):
        return "checkpoint.dirpath"
    if trainer.logger is not None and trainer.logger.save_dir is not None:
        return "trainer.logger.init_args.save_dir"
    return "trainer.default_root_dir"

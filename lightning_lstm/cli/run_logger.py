"""Where a run writes: under ``trainer.default_root_dir``, and into the run folder of the checkpoint it loads.

:class:`RunLogger` is Lightning's TensorBoardLogger whose ``save_dir`` may be left out (``null``): it then follows
``trainer.default_root_dir``, as Lightning's own default logger does.

A subcommand that loads a checkpoint from a run folder (``<run>/checkpoints/*.ckpt``) writes into that run
(:func:`follow_checkpoint_run`) unless ``version`` or ``sub_dir`` is set, or ``save_dir`` is set to a folder the run
is not in: ``fit --ckpt_path`` continues the run's folder and version (its new event file starts at the checkpoint's
step: ``purge_step``), ``validate``, ``test`` and ``predict`` write to ``<run>/validate/``, ``<run>/test/`` and
``<run>/predict/`` instead of a new ``version_<n>``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from lightning_lstm.callbacks.run_io import write_scalars
from lightning_lstm.cli.checkpoints import global_step

log = logging.getLogger(__name__)
FLUSH_EVERY_S = 2.0
"""Seconds between two flushes of the event file by :meth:`RunLogger.save` (Lightning asks at every logging step)."""


class RunLogger(TensorBoardLogger):
    """TensorBoardLogger (same arguments) whose run folders go under ``trainer.default_root_dir`` by default.

    Args:
        save_dir: folder of ``<name>/version_<n>/``; ``null``: ``trainer.default_root_dir`` (the current folder when
            that is not set either).
        name: experiment name, the folder between ``save_dir`` and ``version_<n>``.
        version: run folder name (an int ``n`` gives ``version_<n>``); ``null``: the next free ``version_<n>``, or the
            run of the checkpoint a subcommand loads.
        log_graph: add the model graph to TensorBoard.
        default_hp_metric: log a placeholder ``hp_metric`` with the hyperparameters.
        prefix: prefix of every metric name.
        sub_dir: sub-folder of the run folder for the event files.
        max_queue: events queued for the writer thread before logging waits for it (TensorBoard's default is 10;
            a logging step of this package writes about a dozen).

    Lightning flushes the event file after every logging step, and a flush waits for TensorBoard's writer thread to
    checksum every queued event in pure Python (~25 us a scalar): at a small model's logging step that cost more than
    the step. This logger flushes at most every :data:`FLUSH_EVERY_S` seconds (and when the run ends, on Ctrl-C too),
    so TensorBoard still shows a running fit's new steps within seconds; a kill -9 may lose the last seconds of scalars
    (checkpoints are unaffected).

    The scalars of one step are one event, whoever logs them: the calls for a step (at a logging step the LR
    monitor's learning rate before the update and the step's loss and gradient norm after it) are held until a call
    for another step, :meth:`save` or :meth:`finalize`, then written together. Each event costs TensorBoard's writer
    thread ~0.1 ms (a pure-Python checksum, an append to the file, a GIL hand-over), more than a tiny model's step.
    """

    def __init__(
        self,
        save_dir: _PATH | None = None,
        name: str | None = "lightning_logs",
        version: int | str | None = None,
        log_graph: bool = False,
        default_hp_metric: bool = True,
        prefix: str = "",
        sub_dir: _PATH | None = None,
        max_queue: int = 100,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            save_dir if save_dir is not None else os.getcwd(), name, version, log_graph, default_hp_metric, prefix,
            sub_dir, max_queue=max_queue, **kwargs,
        )  # fmt: skip
        self.save_dir_given = save_dir is not None
        self.place_given = version is not None or sub_dir is not None
        self._flushed_at = -math.inf
        self.metric_prefix = prefix
        self._pending_step: int | None = None
        self._pending: dict[str, float] = {}  # the scalars of step _pending_step, not written yet

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """As TensorBoardLogger, with the scalars of one step in one event (:func:`~.run_io.write_scalars`): held
        until a call for another step (or a tag already held), :meth:`save` or :meth:`finalize`."""
        scalars = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
        grouped = {k: v for k, v in metrics.items() if isinstance(v, dict)}  # add_scalars: a run per key, as before
        if grouped:
            super().log_metrics(grouped, step)
        if scalars:
            join = self.LOGGER_JOIN_CHAR
            prefixed = {f"{self.metric_prefix}{join}{k}" if self.metric_prefix else k: v for k, v in scalars.items()}
            try:
                values = {k: float(v) for k, v in prefixed.items()}
            except (TypeError, ValueError) as ex:  # the message of TensorBoardLogger.log_metrics
                raise ValueError(
                    f"\n you tried to log {scalars} which is currently not supported. Try a dict or a scalar/tensor."
                ) from ex
            if step != self._pending_step or not self._pending.keys().isdisjoint(values):
                self.write_pending()  # another step, or a tag logged twice at one step: both values are kept
            self._pending_step = step
            self._pending.update(values)

    def write_pending(self) -> None:
        """Writes the held scalars of the last step logged, as one event."""
        if self._pending:
            pending, self._pending = self._pending, {}
            write_scalars(self.experiment, pending, self._pending_step)

    @rank_zero_only
    def save(self) -> None:
        """Flush the events and write ``hparams.yaml`` (as Lightning does), at most every :data:`FLUSH_EVERY_S`."""
        self.write_pending()
        if time.monotonic() - self._flushed_at >= FLUSH_EVERY_S:
            super().save()
            self._flushed_at = time.monotonic()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.write_pending()
        self._flushed_at = -math.inf  # the last events reach the file whatever the time
        super().finalize(status)

    def follow_root_dir(self, default_root_dir: _PATH) -> None:
        """Put the run folders under ``default_root_dir`` unless ``save_dir`` was given (before anything is written)."""
        if not self.save_dir_given:
            self._root_dir = os.fspath(default_root_dir)

    def write_into(self, run: Path, sub_dir: str | None, purge_step: int | None) -> None:
        """Write into run folder ``run`` (its ``sub_dir`` for the event files); TensorBoard hides events of earlier
        files from ``purge_step`` on. Only before the event writer exists."""
        self._root_dir, self._name, self._version = str(run.parent), "", run.name
        self._sub_dir = sub_dir
        if purge_step is not None:
            self._kwargs["purge_step"] = purge_step


def checkpoint_run(ckpt_path: str | None) -> Path | None:
    """The run folder of ``<run>/checkpoints/<file>.ckpt`` when ``<run>`` is one (it holds events or a config)."""
    if not ckpt_path or not Path(ckpt_path).is_file():
        return None
    folder = Path(ckpt_path).resolve().parent
    run = folder.parent
    if folder.name != "checkpoints":
        return None
    marks = ("config.yaml", "hparams.yaml")
    if any((run / mark).is_file() for mark in marks) or any(run.glob("events.out.tfevents.*")):
        return run
    return None


def follow_checkpoint_run(trainer: pl.Trainer, ckpt_path: str | None, subcommand: str) -> Path | None:
    """Point the trainer's :class:`RunLogger` at the run folder of ``ckpt_path`` (see the module docstring).

    Returns the folder written to, or ``None`` when the logger keeps its own (another logger, a given ``version`` or
    ``sub_dir``, a ``save_dir`` the run is not in, or a checkpoint outside a run folder).
    """
    logger = trainer.logger
    run = checkpoint_run(ckpt_path)
    if not isinstance(logger, RunLogger) or logger.place_given or run is None:
        return None
    if logger.save_dir_given and not run.is_relative_to(Path(logger.save_dir).resolve()):
        return None
    if subcommand == "fit":
        step = global_step(Path(ckpt_path))  # None for a bad file: the restore itself reports it
        logger.write_into(run, None, step)  # the first step it logs is the checkpoint's global step
        # Lightning's "exists and is not empty" warning for this folder: its checkpoints are the ones resumed from
        warnings.filterwarnings("ignore", message=re.escape(f"Checkpoint directory {run / 'checkpoints'} exists"))
        log.info("resuming run %s from %s", run, Path(ckpt_path).name)
        return run
    logger.write_into(run, subcommand, None)
    log.info("%s writes into %s", subcommand, run / subcommand)
    return run / subcommand


def without_checkpointing(trainer_config: dict, callbacks: list) -> list:
    """``callbacks`` without the ``checkpoint`` group's ModelCheckpoint under ``trainer.enable_checkpointing: false``
    (Lightning refuses a ModelCheckpoint then; the group is always on otherwise)."""
    if trainer_config.get("enable_checkpointing", True) is not False:
        return callbacks
    return [callback for callback in callbacks if not isinstance(callback, ModelCheckpoint)]


def without_progress_bar(trainer_config: dict, callbacks: list) -> list:
    """``callbacks`` without the ``progress_bar`` group's bar under ``trainer.enable_progress_bar: false`` (Lightning
    refuses a bar then) or when ``trainer.callbacks`` brings its own (Lightning allows one bar)."""
    own_bar = any(isinstance(c, ProgressBar) for c in trainer_config.get("callbacks") or [])
    if trainer_config.get("enable_progress_bar", True) is not False and not own_bar:
        return callbacks
    return [callback for callback in callbacks if not isinstance(callback, ProgressBar)]


def defer_config_save(trainer: pl.Trainer) -> SaveConfigCallback | None:
    """In a run folder that already holds a ``config.yaml`` (a resumed fit, a repeated test), write the config only
    once the command succeeded (:func:`save_deferred_config`): a command refused for its input leaves it as it was."""
    log_dir = trainer.log_dir
    for callback in trainer.callbacks:
        if isinstance(callback, SaveConfigCallback) and not callback.already_saved and log_dir:
            if (Path(log_dir) / callback.config_filename).is_file():
                callback.already_saved = True  # skipped in setup
                return callback
    return None


def save_deferred_config(trainer: pl.Trainer, callback: SaveConfigCallback | None, stage: str) -> None:
    """Write the config :func:`defer_config_save` held back (every rank calls it: ``setup`` syncs the ranks)."""
    if callback is not None:
        callback.already_saved = False
        callback.setup(trainer, trainer.lightning_module, stage)

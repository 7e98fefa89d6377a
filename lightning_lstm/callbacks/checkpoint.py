"""ModelCheckpoint whose ``last.ckpt`` always holds the run's latest weights, and whose exception checkpoint says why.

Lightning 2.6 rewrites ``last.ckpt`` only together with a top-k checkpoint, so after a plateau ``last.ckpt`` (and
``--ckpt_path last``) silently holds the last improvement. :class:`RunCheckpoint` also rewrites it at every save point
where no top-k file was written, at the end of training, and every ``last_every_n_train_steps`` optimizer steps. The
checkpoint of an interrupted run is ``interrupted-epochNNN-stepN.ckpt`` (Ctrl-C, SIGTERM) or
``failed-epochNNN-stepN.ckpt`` (any other exception); a failed checkpoint write (disk full) writes no second one.
``save_last: link`` points ``last.ckpt`` at the newest file in one rename, or writes a full file when there is none.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any, Literal

import lightning.pytorch as pl
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lightning_lstm.checkpoint_io import CheckpointWriteError, link_atomically


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` (same arguments) with an always-current ``last.ckpt`` and named exception checkpoints.

    Args:
        last_every_n_train_steps: also rewrite ``last.ckpt`` every N optimizer steps (0: only at epoch ends). For
            long epochs: a kill then loses at most N steps. Independent of ``every_n_train_steps``, which saves top-k
            checkpoints.
    """

    def __init__(
        self,
        dirpath: _PATH | None = None,
        filename: str | None = None,
        monitor: str | None = None,
        verbose: bool = False,
        save_last: bool | Literal["link"] | None = None,
        save_top_k: int = 1,
        save_on_exception: bool = False,
        save_weights_only: bool = False,
        mode: str = "min",
        auto_insert_metric_name: bool = True,
        every_n_train_steps: int | None = None,
        train_time_interval: timedelta | None = None,
        every_n_epochs: int | None = None,
        save_on_train_epoch_end: bool | None = None,
        enable_version_counter: bool = True,
        last_every_n_train_steps: int = 0,
    ) -> None:
        super().__init__(
            dirpath, filename, monitor, verbose, save_last, save_top_k, save_on_exception, save_weights_only, mode,
            auto_insert_metric_name, every_n_train_steps, train_time_interval, every_n_epochs,
            save_on_train_epoch_end, enable_version_counter,
        )  # fmt: skip
        if last_every_n_train_steps < 0:
            raise ValueError(f"checkpoint.last_every_n_train_steps must be >= 0, got {last_every_n_train_steps}")
        self.last_every_n_train_steps = last_every_n_train_steps
        self._last_step_in_last: int | None = None  # global step of the newest last.ckpt this run wrote
        self._saves_by_step = bool(every_n_train_steps) or train_time_interval is not None
        self._state_key: tuple[tuple, str] | None = None

    @property
    def state_key(self) -> str:
        """ModelCheckpoint's key, built once per (monitor, mode): Lightning asks for it at every hook it dispatches
        (6 times a step), and building it formats a dict each time."""
        settings = (self.monitor, self.mode)
        if self._state_key is None or self._state_key[0] != settings:
            self._state_key = (settings, super().state_key)
        return self._state_key[1]

    # -- save points -------------------------------------------------------------------------------------------------
    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._saves_by_step:  # ModelCheckpoint saves top-k only on these triggers; else it would just return
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        n = self.last_every_n_train_steps
        if n and trainer.global_step % n == 0:
            self._refresh_last(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        self._refresh_last(trainer)  # also in epochs without validation (check_val_every_n_epoch > 1)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._refresh_last(trainer)  # e.g. max_steps reached mid-epoch

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, CheckpointWriteError) or not self._should_save_on_exception(trainer):
            return  # a write just failed: a second one would fail too and hide the first error
        kind = "interrupted" if isinstance(exception, (KeyboardInterrupt, SIGTERMException)) else "failed"
        name = f"{kind}-epoch{trainer.current_epoch:03d}-step{trainer.global_step}{self.FILE_EXTENSION}"
        filepath = os.path.join(self.dirpath, name)
        try:
            self._save_checkpoint(trainer, filepath)
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        except CheckpointWriteError as err:  # keep the original exception, and the other callbacks' on_exception
            rank_zero_warn(f"no {kind} checkpoint: {err}")
            return
        rank_zero_info(f"{type(exception).__name__} at global step {trainer.global_step}: saved {filepath}")

    # -- last.ckpt ---------------------------------------------------------------------------------------------------
    def _refresh_last(self, trainer: pl.Trainer) -> None:
        """Write ``last.ckpt`` at this step unless it already holds it (or checkpoints are off right now)."""
        if not self.save_last or self._last_step_in_last == trainer.global_step or trainer.global_step == 0:
            return
        if trainer.fast_dev_run or trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_last_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, Any]) -> None:
        if self.save_last == "link" and self._last_global_step_saved != trainer.global_step:
            self._last_checkpoint_saved = ""  # no file of this step to link to: Lightning then writes last in full
        super()._save_last_checkpoint(trainer, monitor_candidates)
        if self.save_last:
            self._last_step_in_last = trainer.global_step

    def _link_checkpoint(self, trainer: pl.Trainer, filepath: str, linkpath: str) -> None:
        # Lightning 2.6 removes linkpath, then links or copies: a kill in between leaves no (or a partial) last.ckpt.
        if trainer.is_global_zero:
            link_atomically(filepath, linkpath, getattr(trainer.strategy.checkpoint_io, "folder_key", None))
        trainer.strategy.barrier()

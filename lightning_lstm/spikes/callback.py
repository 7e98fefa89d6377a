"""The loss-spike callback: detect before the optimizer step, act (log, skip, stop, save the batch), explain.

On by default in ``configs/default.yaml`` (group ``spikes``); open TensorBoard's Custom Scalars tab, "Stability".
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger

from lightning_lstm.spikes.detector import SpikeDetector
from lightning_lstm.spikes.diagnosis import RunContext, diagnose
from lightning_lstm.spikes.records import SpikeRecord
from lightning_lstm.spikes.tensorboard_report import (
    STABILITY_LAYOUT,
    spike_markdown,
    summary_markdown,
    write_scalars,
)

log = logging.getLogger(__name__)

ACTIONS = ("log", "skip", "stop", "save_batch")


def _gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (only called when all ranks reached the same spike decision)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


class LossSpikeCallback(Callback):
    """Scores every step's training loss and gradient norm (before clipping) against a robust rolling baseline.

    The decision is taken in ``on_before_optimizer_step``: after backward (and after AMP unscaling), before gradient
    clipping and the optimizer step, so ``skip`` can still cancel the update by dropping the gradients (optimizers
    leave parameters without a gradient, and their state, untouched; clipping and GradScaler cope with it). Under DDP
    the ranks' losses are gathered once per step (one small collective, no barrier) and every rank scores their mean,
    so all ranks reach the same decision; at the end each rank's decisions are compared in ``spikes.json``. Only rank
    zero writes.

    State (detector windows and counts, spike records, learning-rate history) travels in the checkpoint under the
    state key ``LossSpikeCallback``, independent of the settings, so thresholds may change on resume. With
    ``accumulate_grad_batches > 1`` the decision sees the last micro-batch's loss.

    Args:
        window: steps in the rolling baseline (median and MAD).
        warmup: global steps observed before a finite loss can be a spike (never re-applied per epoch or on resume).
        threshold: robust z-score (``(loss - median) / (1.4826 MAD)``) at or above which a loss spikes.
        relative_floor: a spike must also exceed the median by this fraction of it (ignores wiggles on flat losses).
        grad_norm_threshold: the same score threshold for the gradient norm, the second signal.
        actions: any of ``log`` (always implied), ``skip`` (cancel the spiking step's update), ``stop`` (stop cleanly
            after ``stop_after`` spikes, leaving a checkpoint), ``save_batch`` (save the batch and its window ids).
        act_on: ``loss``, or ``loss_or_grad_norm`` to treat a gradient-norm spike alone as a spike too.
        stop_after: spikes before ``stop`` ends the fit, counted over the whole run (a resumed fit keeps the count:
            raise it to train on after a stop).
        top_windows: highest-loss windows named in each spike report.
        log_every_n_steps: write the Stability scalars of every N-th step, and of every spike step; ``null``: the
            trainer's ``log_every_n_steps``; 0: none. Each write costs TensorBoard's writer thread ~0.3 ms of CPU
            (its CRC is pure Python), so 1 (every step) adds ~1% to the default model's step, more on a busy CPU.
        max_saved_batches: at most this many batches are saved by ``save_batch``.
        max_text_entries: at most this many per-spike text entries in TensorBoard (spikes.json has all).
    """

    def __init__(
        self,
        window: int = 50,
        warmup: int = 20,
        threshold: float = 6.0,
        relative_floor: float = 0.1,
        grad_norm_threshold: float = 6.0,
        actions: list[Literal["log", "skip", "stop", "save_batch"]] = ["log"],  # noqa: B006 - literal default for the CLI
        act_on: Literal["loss", "loss_or_grad_norm"] = "loss",
        stop_after: int = 10,
        top_windows: int = 5,
        log_every_n_steps: int | None = None,
        max_saved_batches: int = 20,
        max_text_entries: int = 100,
    ) -> None:
        unknown = [a for a in actions if a not in ACTIONS]
        if unknown:
            raise ValueError(f"spikes.actions: unknown {unknown}; choose from {list(ACTIONS)}")
        if act_on not in ("loss", "loss_or_grad_norm"):
            raise ValueError(f"spikes.act_on must be 'loss' or 'loss_or_grad_norm', got {act_on!r}")
        for key, value in (("stop_after", stop_after), ("top_windows", top_windows)):
            if value < 1:
                raise ValueError(f"spikes.{key} must be >= 1, got {value}")
        if log_every_n_steps is not None and log_every_n_steps < 0:
            raise ValueError(f"spikes.log_every_n_steps must be >= 0, got {log_every_n_steps}")
        self.loss_detector = SpikeDetector(window, warmup, threshold, relative_floor)
        self.grad_detector = SpikeDetector(window, warmup, grad_norm_threshold, relative_floor)
        self.actions = set(actions) | {"log"}
        self.act_on = act_on
        self.stop_after = stop_after
        self.top_windows = top_windows
        self.log_every_n_steps = log_every_n_steps
        self.max_saved_batches = max_saved_batches
        self.max_text_entries = max_text_entries
        self.records: list[SpikeRecord] = []
        self.lr_initial: float | None = None
        self.lr_max = 0.0
        self.lr_previous: float | None = None
        self.lr_increased_steps: list[int] = []
        self.saved_batches = 0
        self.stop_reason: str | None = None
        self.epochs_seen = 0
        self._batch: Any = None
        self._batch_idx = 0
        self._last_step: dict | None = None  # the module's step dict already scored (never score a stale one twice)
        self._stop_saved = False
        self._run_dir_path: Path | None = None
        self._layout_written_to: Path | None = None
        self._log_every = log_every_n_steps or 0

    # -- hooks -----------------------------------------------------------------------------------------------------
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # trainer.log_dir is a collective under DDP: resolve it here, on every rank, never later on rank zero alone.
        self._run_dir_path = Path(trainer.log_dir or trainer.default_root_dir)
        self._stop_saved = False
        self._log_every = trainer.log_every_n_steps if self.log_every_n_steps is None else self.log_every_n_steps
        writer = self._writer(trainer)
        if writer is not None and self._layout_written_to != self._run_dir_path:  # once per run folder
            writer.add_custom_scalars(STABILITY_LAYOUT)
            self._layout_written_to = self._run_dir_path

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._batch, self._batch_idx = batch, batch_idx

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        step = getattr(pl_module, "last_train_step", None)
        if not step or step is self._last_step:  # no training step ran since the last decision (e.g. it returned None)
            return
        self._last_step = step
        values = torch.stack([step["loss"].float(), pl_module.pre_clip_grad_norm().float().to(step["loss"].device)])
        if trainer.world_size > 1:
            gathered = trainer.strategy.all_gather(values)  # (W, 2): every rank's loss; grad norms are equal
            loss, grad_norm = float(gathered[:, 0].mean()), float(gathered[0, 1])
        else:
            loss, grad_norm = values.tolist()  # the one host sync the decision needs
        lr = float(optimizer.param_groups[0]["lr"])
        self.epochs_seen = max(self.epochs_seen, trainer.current_epoch + 1)
        self._track_lr(lr, trainer.global_step)
        verdict, grad = self.loss_detector.update(loss), self.grad_detector.update(grad_norm)
        spike = verdict.is_spike or not math.isfinite(grad_norm) or (self.act_on != "loss" and grad.is_spike)
        if spike:
            record = self._record(trainer, pl_module, loss, verdict, grad_norm, grad, lr)
            if "skip" in self.actions:
                optimizer.zero_grad(set_to_none=True)  # no gradient, no update: optimizers skip such parameters
                record.skipped = True
            if "save_batch" in self.actions and self.saved_batches < self.max_saved_batches:
                self._save_batch(trainer, record)
            self.records.append(record)
            self._report(trainer, record)
            if "stop" in self.actions and len(self.records) >= self.stop_after and self.stop_reason is None:
                self.stop_reason = (
                    f"stopped after {len(self.records)} loss spikes (spikes.stop_after={self.stop_after}); "
                    f"the last at global step {record.global_step}, epoch {record.epoch}"
                )
                trainer.should_stop = True
                if not record.skipped:  # the stop checkpoint keeps the last good weights, not the spiking update
                    optimizer.zero_grad(set_to_none=True)
                    record.skipped = True
        if self._log_every and (spike or trainer.global_step % self._log_every == 0):
            self._write_scalars(trainer, loss, verdict, grad_norm, grad, lr, spike)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self._batch = None
        if self.stop_reason is not None and not self._stop_saved:
            self._stop_saved = True
            path = self._run_dir(trainer) / "checkpoints" / "spike-stop.ckpt"
            trainer.save_checkpoint(path)  # every rank calls it (a collective); only rank zero writes
            self.stop_reason += f"; checkpoint {path}"
            if trainer.is_global_zero:
                log.warning("%s", self.stop_reason)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        ranks = self._rank_decisions(trainer)  # a collective: before rank zero goes on alone
        if not trainer.is_global_zero:
            return
        sentences = diagnose(self.records, self._context(trainer))
        summary = summary_markdown(self.records, trainer.global_step, self.epochs_seen, sentences, self.stop_reason)
        writer = self._writer(trainer)
        if writer is not None:
            writer.add_text("spikes/summary", summary, trainer.global_step)
            writer.add_text("spikes/diagnosis", "\n\n".join(sentences), trainer.global_step)
            writer.flush()
        run_dir = self._run_dir(trainer)
        run_dir.mkdir(parents=True, exist_ok=True)
        report = {
            "total_steps": trainer.global_step,
            "epochs": self.epochs_seen,
            "stop_reason": self.stop_reason,
            "diagnosis": sentences,
            "settings": self._settings(),
            "ranks": ranks,
            "spikes": [r.to_dict() for r in self.records],
        }
        (run_dir / "spikes.json").write_text(json.dumps(report, indent=2))
        log.info("Loss spikes: %s", summary.replace("\n\n", "\n"))
        if len({(r["spikes"], r["skipped"], r["steps_digest"]) for r in ranks}) > 1:
            log.error("the ranks disagree on the loss spikes (a bug, please report): %s", ranks)

    # -- state -----------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "loss_detector": self.loss_detector.state_dict(),
            "grad_detector": self.grad_detector.state_dict(),
            "records": [r.to_dict() for r in self.records],
            "lr_initial": self.lr_initial,
            "lr_max": self.lr_max,
            "lr_previous": self.lr_previous,
            "lr_increased_steps": list(self.lr_increased_steps),
            "saved_batches": self.saved_batches,
            "epochs_seen": self.epochs_seen,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.loss_detector.load_state_dict(state_dict["loss_detector"])
        self.grad_detector.load_state_dict(state_dict["grad_detector"])
        self.records = [SpikeRecord.from_dict(r) for r in state_dict["records"]]
        self.lr_initial, self.lr_max = state_dict["lr_initial"], state_dict["lr_max"]
        self.lr_previous = state_dict["lr_previous"]
        self.lr_increased_steps = list(state_dict["lr_increased_steps"])
        self.saved_batches = state_dict.get("saved_batches", 0)
        self.epochs_seen = state_dict.get("epochs_seen", 0)

    # -- helpers ---------------------------------------------------------------------------------------------------
    def _rank_decisions(self, trainer: pl.Trainer) -> list[dict[str, Any]]:
        """Each rank's own view of its decisions (count, skips, a digest of the spike steps), gathered once per fit."""
        steps = ",".join(str(r.global_step) for r in self.records)
        mine = {
            "rank": trainer.global_rank,
            "spikes": len(self.records),
            "skipped": sum(r.skipped for r in self.records),
            "steps_digest": hashlib.sha1(steps.encode()).hexdigest()[:12],
        }
        return _gather_objects(mine)

    def _track_lr(self, lr: float, step: int) -> None:
        if self.lr_initial is None:
            self.lr_initial = lr
        if (
            self.lr_previous is not None
            and lr > self.lr_previous * (1 + 1e-9)
            and len(self.lr_increased_steps) < 10_000
        ):
            self.lr_increased_steps.append(step)
        self.lr_previous, self.lr_max = lr, max(self.lr_max, lr)

    def _record(self, trainer, pl_module, loss, verdict, grad_norm, grad, lr) -> SpikeRecord:
        step = pl_module.last_train_step
        ids, losses = step["window_ids"].detach().cpu(), step["window_losses"].detach().float().cpu()
        parts = _gather_objects((ids.tolist(), losses.tolist()))
        all_ids = [i for part in parts for i in part[0]]
        all_losses = [v if math.isfinite(v) else math.inf for part in parts for v in part[1]]
        order = sorted(range(len(all_ids)), key=lambda i: -all_losses[i])[: self.top_windows]
        datamodule = trainer.datamodule
        top: list[dict[str, Any]] = []
        if order and hasattr(datamodule, "describe_windows"):
            table = datamodule.describe_windows([all_ids[i] for i in order], forecast=False)
            top = [
                dict(row, window_id=int(row["window_id"]), loss=all_losses[i])
                for row, i in zip(table.to_dict("records"), order, strict=True)
            ]
        nominal = getattr(getattr(datamodule, "hparams", None), "batch_size", None) or len(ids)
        batches = trainer.num_training_batches
        return SpikeRecord(
            epoch=trainer.current_epoch,
            global_step=trainer.global_step,
            batch_idx=self._batch_idx,
            batches_in_epoch=int(batches) if math.isfinite(batches) else None,
            loss=loss,
            baseline=verdict.baseline,
            score=verdict.score,
            threshold=self.loss_detector.threshold,
            grad_norm=grad_norm,
            grad_score=grad.score,
            grad_spike=grad.is_spike,
            lr=lr,
            batch_size=len(ids),
            nominal_batch_size=int(nominal),
            nonfinite=not math.isfinite(loss),
            skipped=False,
            top_windows=top,
        )

    def _save_batch(self, trainer: pl.Trainer, record: SpikeRecord) -> None:
        batch = {k: v.detach().cpu() for k, v in (self._batch or {}).items() if isinstance(v, torch.Tensor)}
        parts = _gather_objects(batch)
        self.saved_batches += 1
        if trainer.is_global_zero:
            folder = self._run_dir(trainer) / "spike_batches"
            folder.mkdir(parents=True, exist_ok=True)
            payload = {"record": record.to_dict(), "ranks": parts}
            torch.save(payload, folder / f"step{record.global_step:07d}.pt")

    def _report(self, trainer: pl.Trainer, record: SpikeRecord) -> None:
        if not trainer.is_global_zero:
            return
        several = trainer.datamodule is not None and getattr(trainer.datamodule.frame, "num_series", 1) > 1
        where = ", ".join(
            (f"{w['series']} " if several else "") + f"{w['target_start']}" for w in record.top_windows[:2]
        )
        log.info(
            "loss spike at step %d (epoch %d, batch %d): loss %.4g vs baseline %.4g, score %.1f%s%s",
            record.global_step,
            record.epoch,
            record.batch_idx,
            record.loss,
            record.baseline,
            record.score,
            f"; worst windows {where}" if where else "",
            "; update skipped" if record.skipped else "",
        )
        writer = self._writer(trainer)
        if writer is not None and len(self.records) <= self.max_text_entries:
            writer.add_text("spikes/report", spike_markdown(record), record.global_step)

    def _write_scalars(self, trainer, loss, verdict, grad_norm, grad, lr, spike) -> None:
        writer = self._writer(trainer)
        if writer is None:
            return
        values = {
            "loss": loss,
            "loss_threshold": verdict.baseline + self.loss_detector.threshold * verdict.spread,
            "loss_score": verdict.score,
            "grad_norm": grad_norm,
            "grad_norm_threshold": grad.baseline + self.grad_detector.threshold * grad.spread,
            "grad_norm_score": grad.score,
            "lr": lr,
            "spike": float(spike),
            "spike_count": float(len(self.records)),
        }
        write_scalars(writer, values, trainer.global_step)

    @staticmethod
    def _writer(trainer: pl.Trainer):
        if not trainer.is_global_zero:
            return None
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                return logger.experiment
        return None

    def _run_dir(self, trainer: pl.Trainer) -> Path:
        if self._run_dir_path is None:  # used outside fit (the hooks above set it on every rank)
            self._run_dir_path = Path(trainer.log_dir or trainer.default_root_dir)
        return self._run_dir_path

    def _context(self, trainer: pl.Trainer) -> RunContext:
        datamodule = trainer.datamodule
        hp = getattr(datamodule, "hparams", {})
        batch_size = int(hp.get("batch_size", 1)) if hp else 1
        last = None
        loader = trainer.train_dataloader
        if loader is not None and hasattr(loader, "sampler"):
            per_rank = len(loader.sampler)
            last = batch_size if hp.get("drop_last", False) else (per_rank % batch_size or batch_size)
        batches = trainer.num_training_batches
        return RunContext(
            num_epochs_run=self.epochs_seen,
            steps_per_epoch=int(batches) if math.isfinite(batches) else None,
            shuffle=bool(hp.get("shuffle", True)) if hp else True,
            drop_last=bool(hp.get("drop_last", False)) if hp else False,
            last_batch_size=last,
            nominal_batch_size=batch_size,
            gradient_clip_val=trainer.gradient_clip_val or None,  # Lightning treats 0 as off
            outliers=str(hp.get("outliers", "none")) if hp else "none",
            lr_max_seen=self.lr_max,
            lr_initial=self.lr_initial or 0.0,
            total_steps=trainer.global_step,
            lr_increased_steps=list(self.lr_increased_steps),
        )

    def _settings(self) -> dict[str, Any]:
        return {
            "window": self.loss_detector.window,
            "warmup": self.loss_detector.warmup,
            "threshold": self.loss_detector.threshold,
            "relative_floor": self.loss_detector.relative_floor,
            "grad_norm_threshold": self.grad_detector.threshold,
            "actions": sorted(self.actions),
            "act_on": self.act_on,
        }

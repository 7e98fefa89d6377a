"""The loss-spike callback: detect before the optimizer step, act (log, skip, stop, save the batch), explain.

On by default in ``configs/default.yaml`` (group ``spikes``). Works with any LightningModule: what it needs from the
module and the data is in :mod:`lightning_lstm.callbacks.contracts`. The detectors, the run history, the records, the
diagnosis and the outputs it calls are plain modules beside it. Adding an action: a value of :data:`Action` and its
handling in :meth:`LossSpikeCallback._settle`.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal, get_args

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.apply_func import apply_to_collection
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.data import extract_batch_size

from lightning_lstm.callbacks.contracts import (
    STEP_KEYS,
    BatchSettings,
    WindowDescriptions,
    loader_shuffles,
    spike_contracts,
)
from lightning_lstm.callbacks.run_io import gather_objects, run_dir, tensorboard_writer
from lightning_lstm.model.step_logging import logs_this_step
from lightning_lstm.spikes.bad_values import data_evidence
from lightning_lstm.spikes.data_notes import data_notes_markdown, note_line, profiles_and_notes
from lightning_lstm.spikes.detector import DeviceSpikeDetector, SpikeDetector, SpikeVerdict, as_kind
from lightning_lstm.spikes.diagnosis import diagnose, find_causes
from lightning_lstm.spikes.evidence import NAMED_SHARE, loss_dispersion
from lightning_lstm.spikes.history import RunHistory, median_or_none
from lightning_lstm.spikes.intervention import Intervention
from lightning_lstm.spikes.outputs import (
    clip_norm,
    detector_values,
    log_spike,
    spike_markdown,
    summary_markdown,
    write_layout,
    write_loss_figure,
    write_report,
    write_scalars,
)
from lightning_lstm.spikes.pending import DeferredDecisions, StepContext, UnscoredSteps, pack, unpack
from lightning_lstm.spikes.records import RunContext, SpikeRecord

log = logging.getLogger(__name__)

Action = Literal["log", "skip", "stop", "save_batch"]
ActOn = Literal["loss", "loss_or_grad_norm"]
ACTIONS = get_args(Action)
ACT_ON = get_args(ActOn)


class LossSpikeCallback(Callback):
    """Scores every step's training loss and gradient norm (before clipping) against a robust rolling baseline.

    The decision is taken in ``on_before_optimizer_step``: after backward (and after AMP unscaling), before gradient
    clipping and the optimizer step, so ``skip`` can still cancel the update by dropping the gradients (optimizers
    leave parameters without a gradient, and their state, untouched; clipping and GradScaler cope with it). Under DDP
    the ranks' losses are gathered once per step (one small collective, no barrier) and every rank scores their mean,
    so all ranks reach the same decision; at the end each rank's decisions are compared in ``spikes.json``. Only rank
    zero writes.

    Loss-only mode: a module without ``last_train_step``
    (:class:`~lightning_lstm.callbacks.contracts.StepWindowLosses`) is scored on the loss its ``training_step``
    returns, in ``on_train_batch_end``, after the update: spikes are detected, logged and reported, with no windows
    named; ``skip`` is an error and ``stop`` keeps the spiking update. A warning at setup says so.

    Each flagged spike's windows are re-scored with single values replaced (rank zero, only on spikes:
    :mod:`~lightning_lstm.spikes.intervention`, which states the weights used), giving ``explained_share`` and the
    named values' ``explains``. At fit start the values implausible for their column in the training or validation
    span are listed (:mod:`~lightning_lstm.spikes.data_notes`) in the log, TensorBoard (``spikes/data_notes``) and
    ``spikes.json`` (``data_notes``); the data are never changed.

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
        log_every_n_steps: write the detector's Stability series (thresholds, scores, spike marker and count) every
            N-th step, at the steps Lightning writes step metrics for that N, and at every spike step; ``null``: the
            trainer's ``log_every_n_steps``, so they line up with ``train/loss_step``; 0: none.
        max_saved_batches: at most this many batches are saved by ``save_batch``.
        max_text_entries: at most this many per-spike text entries in TensorBoard (spikes.json has all).
        on_device: keep the rolling windows on the training device and decide there, reading the verdicts on the
            host one step late (no host sync per step; ``skip`` and ``stop`` still read one flag per step, as the
            update waits for them); ``null``: on any accelerator, not on the CPU (where the host detector is ~100x
            cheaper than torch ops). Off, without ``skip``, ``stop`` or ``save_batch``, the host detectors read and
            score the steps in batches of 32 (one read each, spikes reported up to 32 steps late); with them, one read
            per step.
    """

    def __init__(
        self,
        window: int = 50,
        warmup: int = 20,
        threshold: float = 6.0,
        relative_floor: float = 0.1,
        grad_norm_threshold: float = 6.0,
        actions: list[Action] = ["log"],
        act_on: ActOn = "loss",
        stop_after: int = 10,
        top_windows: int = 5,
        log_every_n_steps: int | None = None,
        max_saved_batches: int = 20,
        max_text_entries: int = 100,
        on_device: bool | None = None,
    ) -> None:
        unknown = [a for a in actions if a not in ACTIONS]
        if unknown:
            raise ValueError(f"spikes.actions: unknown {unknown}; choose from {list(ACTIONS)}")
        if act_on not in ACT_ON:
            raise ValueError(f"spikes.act_on must be one of {list(ACT_ON)}, got {act_on!r}")
        for key, value in (("stop_after", stop_after), ("top_windows", top_windows)):
            if value < 1:
                raise ValueError(f"spikes.{key} must be >= 1, got {value}")
        if log_every_n_steps is not None and log_every_n_steps < 0:
            raise ValueError(f"spikes.log_every_n_steps must be >= 0, got {log_every_n_steps}")
        self.on_device = on_device
        self.loss_detector = SpikeDetector(window, warmup, threshold, relative_floor)
        self.grad_detector = SpikeDetector(window, warmup, grad_norm_threshold, relative_floor)
        self._deferred = DeferredDecisions()  # device decisions, read one step late
        self._unscored = UnscoredSteps()  # host detectors: steps read and scored in batches
        self.actions = set(actions) | {"log"}
        self.act_on = act_on
        self.stop_after = stop_after
        self.top_windows = top_windows
        self.log_every_n_steps = log_every_n_steps
        self.max_saved_batches = max_saved_batches
        self.max_text_entries = max_text_entries
        self.records: list[SpikeRecord] = []
        self.history = RunHistory()  # per step: loss, threshold, grad norm, lr, epoch (figure, diagnosis, doctor)
        self.context: RunContext | None = None  # the diagnosis' RunContext of the last fit (set at its end, rank 0)
        self.diagnosis: list[str] = []  # its sentences (as in spikes.json)
        self.saved_batches = 0
        self.stop_reason: str | None = None
        self.epochs_seen = 0
        self.per_window = True  # the module provides StepWindowLosses (set in setup)
        self._module_grad_norm = True  # the module provides PreClipGradNorm (set in setup)
        self._batch: Any = None
        self._batch_idx = 0
        self._last_step: Mapping | None = None  # the module's step dict already scored (never score one twice)
        self._pending: tuple[int, torch.Tensor, float] | None = None  # loss-only mode: step, grad norm, lr
        self._stop_saved = False
        self._interrupted = False  # set by on_exception: on_train_end then writes without a collective
        self._run_dir: Path | None = None
        self._trainer: pl.Trainer | None = None
        self._layout_written_to: Path | None = None
        self._log_every = log_every_n_steps or 0
        self.intervention = Intervention()  # replaces values of flagged spikes' windows (rank zero)
        self.data_notes: list[dict[str, Any]] = []  # values implausible for their column (set at fit start, rank 0)
        self.data_notes_total = 0
        self._profiles: dict = {}  # {(series, column): ColumnProfile} of the training span

    # -- hooks -----------------------------------------------------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        self.per_window, self._module_grad_norm = spike_contracts(trainer, pl_module, self.actions)
        device = self.on_device if self.on_device is not None else pl_module.device.type != "cpu"
        self.loss_detector, self.grad_detector = (as_kind(d, device) for d in (self.loss_detector, self.grad_detector))

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._run_dir = run_dir(trainer)  # a collective under DDP: here, on every rank
        self._trainer = trainer  # for decisions settled in state_dict
        self._stop_saved = self._interrupted = False
        self._log_every = trainer.log_every_n_steps if self.log_every_n_steps is None else self.log_every_n_steps
        writer = tensorboard_writer(trainer)
        if writer is not None and self._layout_written_to != self._run_dir:  # once per run folder
            write_layout(writer, clip_norm(trainer) is not None)
            self._layout_written_to = self._run_dir
        if trainer.is_global_zero:
            self._note_data(trainer, writer)
        self.intervention.reset(self._profiles)

    def _note_data(self, trainer: pl.Trainer, writer) -> None:
        """The data notes (:mod:`~lightning_lstm.spikes.data_notes`): logged, in TensorBoard, kept for spikes.json."""
        self._profiles, notes, self.data_notes_total = profiles_and_notes(trainer.datamodule)
        self.data_notes = [asdict(note) for note in notes]
        if notes:
            log.warning(
                "data notes: %d value(s) implausible for their column (training, validation span; unchanged):\n  %s%s",
                self.data_notes_total, "\n  ".join(note_line(n) for n in notes[:20]),
                f"\n  ... and {self.data_notes_total - 20} more (spikes.json)" if self.data_notes_total > 20 else "",
            )  # fmt: skip
        if writer is not None and self._profiles:
            writer.add_text("spikes/data_notes", data_notes_markdown(notes, self.data_notes_total), trainer.global_step)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._batch, self._batch_idx = batch, batch_idx

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        grad_norm = self._grad_norm(pl_module)
        lr = float(optimizer.param_groups[0]["lr"])
        if not self.per_window:
            self._pending = (trainer.global_step, grad_norm, lr)  # scored in on_train_batch_end, with the loss
            return
        step = pl_module.last_train_step
        if not step or step is self._last_step:  # no training step ran since the last decision (e.g. it returned None)
            return
        if self._last_step is None and not set(STEP_KEYS) <= set(step):
            raise ValueError(f"{type(pl_module).__name__}.last_train_step needs the keys {STEP_KEYS}, got {list(step)}")
        self._last_step = step
        self._decide(trainer, step["loss"], grad_norm, lr, trainer.global_step, optimizer, step)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self._pending is not None:  # loss-only mode: the loss Lightning divided by accumulate_grad_batches
            (step, grad_norm, lr), self._pending = self._pending, None
            loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
            if isinstance(loss, torch.Tensor):
                self._decide(trainer, loss.detach() * trainer.accumulate_grad_batches, grad_norm, lr, step, None, None)
        self._settle_deferred(trainer, keep_last=True)  # the previous step's device decision; a full host batch
        self._batch = None
        if self.stop_reason is not None and not self._stop_saved:
            self._stop_saved = True
            path = (self._run_dir or run_dir(trainer)) / "checkpoints" / "spike-stop.ckpt"
            trainer.save_checkpoint(path)  # every rank calls it (a collective); only rank zero writes
            self.stop_reason += f"; checkpoint {path}"
            if trainer.is_global_zero:
                log.warning("%s", self.stop_reason)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        # Ctrl-C, SIGTERM, an error: the report so far, from rank zero alone (no collective: other ranks may be gone).
        if self._run_dir is None:
            return
        self.stop_reason = self.stop_reason or f"{type(exception).__name__} at global step {trainer.global_step}"
        self._interrupted = True
        try:
            self.on_train_end(trainer, pl_module)
        except OSError as err:  # e.g. a full disk: keep the run's own error
            log.warning("no spikes.json: %s", err)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._settle_deferred(trainer, keep_last=False)  # records name the epoch they happened in

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._settle_deferred(trainer, keep_last=False)
        # a collective (before rank zero goes on alone), except after an exception
        ranks = [] if self._interrupted else rank_decisions(trainer, self.records)
        if not trainer.is_global_zero:
            return
        losses = self.loss_detector.state_dict()["values"]  # the rolling window: the loss the run ended at
        final = median_or_none(losses)
        evidence = {"profiles": self._profiles, "tested": self.intervention.tested, "named": NAMED_SHARE}
        self.context = run_context(trainer, self.epochs_seen, self.history, final, self.records, evidence)
        self.context.data_notes, self.context.data_notes_total = self.data_notes, self.data_notes_total
        findings = find_causes(self.records, self.context)
        self.diagnosis = sentences = diagnose(self.records, self.context, findings)
        left_out = max(0, len(self.records) - self.max_text_entries)  # beyond the per-spike report's cap
        summary = summary_markdown(self.records, trainer.global_step, self.epochs_seen, sentences, self.stop_reason,
                                   left_out)  # fmt: skip
        writer = tensorboard_writer(trainer)
        folder = self._run_dir or run_dir(trainer)
        write_loss_figure(writer, folder, self.history, self.records, trainer.global_step)
        if writer is not None:
            writer.add_text("spikes/summary", summary, trainer.global_step)
            writer.add_text("spikes/diagnosis", "\n\n".join(sentences), trainer.global_step)
            writer.flush()
        path = folder / "spikes.json"
        write_report(
            path, trainer, self.records, epochs=self.epochs_seen, stop_reason=self.stop_reason,
            sentences=sentences, settings=self._settings(), ranks=ranks, findings=findings,
            data_notes=self.data_notes, data_notes_total=self.data_notes_total,
        )  # fmt: skip
        log.info("Loss spikes: %s", summary.replace("\n\n", "\n"))

    # -- decide and act ------------------------------------------------------------------------------------------------
    def _grad_norm(self, pl_module: pl.LightningModule) -> torch.Tensor:
        """The total gradient norm before clipping, as a tensor (no host sync): the module's, else taken here."""
        if self._module_grad_norm:
            return pl_module.pre_clip_grad_norm()
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros((), device=pl_module.device)

    def _decide(self, trainer, loss_t, grad_t, lr, step, optimizer, window_step) -> None:
        """Scores one optimizer step and acts on a spike; ``optimizer`` is None once the update is done."""
        if trainer.world_size > 1:  # every rank's loss (W, 2), one small collective; grad norms are equal
            gathered = trainer.strategy.all_gather(torch.stack([loss_t.float(), grad_t.float().to(loss_t.device)]))
            loss_t, grad_t = gathered[:, 0].mean(), gathered[0, 1]
        log_step = bool(self._log_every) and logs_this_step(trainer, self._log_every, step)
        context = StepContext(lr, step, self._batch_idx, window_step, self._batch, log_step)
        waits = optimizer is not None and bool(self.actions & {"skip", "stop"})  # the update waits for the decision
        if not isinstance(self.loss_detector, DeviceSpikeDetector):
            if waits or "save_batch" in self.actions:  # one read per step (save_batch: no queue of whole batches)
                loss, grad_norm = torch.stack([loss_t.float(), grad_t.float().to(loss_t.device)]).tolist()
                self._score_on_host(trainer, loss, grad_norm, optimizer, context)
            else:  # read and scored in batches (pending.UnscoredSteps); per-window records need no batch
                context.batch = None if self.per_window else context.batch
                self._unscored.add(loss_t.detach(), grad_t.detach(), context)
            return
        values = torch.stack([loss_t.float(), grad_t.float().to(loss_t.device)])
        loss_v, grad_v = self.loss_detector.update(values[0]), self.grad_detector.update(values[1])  # on the device
        spike_t = loss_v.is_spike | ~torch.isfinite(grad_v.value) | (grad_v.is_spike & (self.act_on != "loss"))
        packed = pack(loss_v, grad_v, spike_t)  # (13,) float64 on the device
        if waits:
            self._settle(trainer, *unpack(packed.tolist()), optimizer, context)
        else:
            self._deferred.start(packed, context)

    def _score_on_host(self, trainer, loss: float, grad_norm: float, optimizer, context: StepContext) -> None:
        """The host detectors' verdicts on one step, then acting on them."""
        verdict, grad = self.loss_detector.update(loss), self.grad_detector.update(grad_norm)
        spike = verdict.is_spike or not math.isfinite(grad_norm) or (self.act_on != "loss" and grad.is_spike)
        self._settle(trainer, verdict, grad, spike, optimizer, context)

    def _settle_deferred(self, trainer: pl.Trainer | None, keep_last: bool) -> None:
        """Acts on the steps scored later: device decisions one step late, host batches once full (or all of them)."""
        trainer = trainer or self._trainer
        for loss, grad_norm, context in self._unscored.due(all_of_them=not keep_last):
            self._score_on_host(trainer, loss, grad_norm, None, context)
        for pending, values in self._deferred.due(keep_last):
            self._settle(trainer, *unpack(values), None, pending.context)

    def _settle(self, trainer, verdict, grad, spike: bool, optimizer, context: StepContext) -> None:
        """Acts on one scored step on the host: history, records and actions; ``optimizer`` None: update done."""
        step, lr, batch = context.step, context.lr, context.batch
        self.epochs_seen = max(self.epochs_seen, trainer.current_epoch + 1)
        clip = trainer.gradient_clip_val or None
        self.history.append(step, trainer.current_epoch, verdict, self.loss_detector.threshold, grad.value, lr, clip)
        if spike:
            record = spike_record(
                trainer, context, verdict, self.loss_detector.threshold, grad, top_windows=self.top_windows
            )
            if trainer.is_global_zero and self.per_window:  # the weights now (see intervention's docstring)
                record.explained_share = self.intervention.test(trainer.lightning_module, trainer.datamodule, record)
            if "skip" in self.actions and optimizer is not None:
                optimizer.zero_grad(set_to_none=True)  # no gradient, no update: optimizers skip such parameters
                record.skipped = True
            if "save_batch" in self.actions and self.saved_batches < self.max_saved_batches:
                self.saved_batches += 1
                save_batch(trainer, batch, record, self._run_dir or run_dir(trainer))
            self.records.append(record)
            self._report(trainer, record)
            if "stop" in self.actions and len(self.records) >= self.stop_after and self.stop_reason is None:
                self.stop_reason = (
                    f"stopped after {len(self.records)} loss spikes (spikes.stop_after={self.stop_after}); "
                    f"the last at global step {record.global_step}, epoch {record.epoch}"
                )
                trainer.should_stop = True
                if not record.skipped and optimizer is not None:  # the stop checkpoint keeps the last good weights
                    optimizer.zero_grad(set_to_none=True)
                    record.skipped = True
        if self._log_every and (spike or context.log_step):
            writer = tensorboard_writer(trainer)
            if writer is not None:
                series = detector_values(
                    verdict, grad, self.loss_detector.threshold, self.grad_detector.threshold, spike, len(self.records)
                )
                write_scalars(writer, series, step, clip_norm(trainer))

    def _report(self, trainer: pl.Trainer, record: SpikeRecord) -> None:
        if not trainer.is_global_zero:
            return
        log_spike(record)
        writer = tensorboard_writer(trainer)
        if writer is not None and len(self.records) <= self.max_text_entries:
            writer.add_text("spikes/report", spike_markdown(record), record.global_step)

    # -- state -----------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        self._settle_deferred(None, keep_last=False)
        return {
            "loss_detector": self.loss_detector.state_dict(),
            "grad_detector": self.grad_detector.state_dict(),
            "records": [r.to_dict() for r in self.records],
            **self.history.state_dict(),  # lr_initial, lr_max, lr_previous, lr_increased_steps, grad_norms, ...
            "saved_batches": self.saved_batches,
            "epochs_seen": self.epochs_seen,
            "value_shares": [[row, column, shares] for (row, column), shares in self.intervention.tested.items()],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.loss_detector.load_state_dict(state_dict["loss_detector"])
        self.grad_detector.load_state_dict(state_dict["grad_detector"])
        self.records = [SpikeRecord.from_dict(r) for r in state_dict["records"]]
        self.history.load_state_dict(state_dict)  # older checkpoints lack some of its keys
        self.saved_batches = state_dict.get("saved_batches", 0)
        self.epochs_seen = state_dict.get("epochs_seen", 0)
        self.intervention.tested = {
            (int(row), str(column)): {int(k): float(v) for k, v in shares.items()}
            for row, column, shares in state_dict.get("value_shares", [])
        }  # older checkpoints: none

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


# -- the trainer, the data and every rank ------------------------------------------------------------------------------
def batches_per_epoch(trainer: pl.Trainer) -> int | None:
    """Training batches per epoch, ``None`` for an iterable dataset without a length."""
    batches = trainer.num_training_batches
    return int(batches) if math.isfinite(batches) else None


def run_context(
    trainer: pl.Trainer,
    epochs_seen: int,
    history: RunHistory,
    final_loss: float | None = None,
    records: list[SpikeRecord] | None = None,
    evidence: dict[str, Any] | None = None,
) -> RunContext:
    """The run as the diagnosis needs it, gathered in one place: batches from the training DataLoader, outliers from
    the data's hparams, the learning rates and the gradient-norm distribution from the run's ``history``, and what
    the data add (:func:`~lightning_lstm.spikes.bad_values.data_evidence`: the values inside the spikes' windows, the
    targets' level, what outlier clipping would cut), and the model's loss and the spread of its step losses."""
    lrs, norms = history.learning_rate, history.norms
    loader = trainer.train_dataloader
    settings = loader if isinstance(loader, BatchSettings) else None
    batch_size = int(settings.batch_size or 1) if settings is not None else 1
    drop_last = bool(settings.drop_last) if settings is not None else False
    shuffle = loader_shuffles(settings) if settings is not None else None
    last = None
    if settings is not None and settings.batch_size and hasattr(settings.sampler, "__len__"):
        per_rank = len(settings.sampler)
        last = batch_size if drop_last else (per_rank % batch_size or batch_size)
    hparams = getattr(trainer.datamodule, "hparams", None) or {}  # LightningDataModule.save_hyperparameters
    model = getattr(trainer.lightning_module, "hparams", None) or {}
    loss = "pinball" if model.get("quantiles") else model.get("loss")
    return RunContext(
        num_epochs_run=epochs_seen,
        steps_per_epoch=batches_per_epoch(trainer),
        shuffle=True if shuffle is None else shuffle,  # unknown: no advice to shuffle
        drop_last=drop_last,
        last_batch_size=last,
        nominal_batch_size=batch_size,
        gradient_clip_val=trainer.gradient_clip_val or None,  # Lightning treats 0 as off
        outliers=str(hparams.get("outliers", "none")),
        lr_max_seen=lrs.highest,
        lr_initial=lrs.initial or 0.0,
        total_steps=trainer.global_step,
        lr_increased_steps=list(lrs.increased_steps),
        grad_norm_quantiles=norms.quantiles(),
        clip_engaged_steps=norms.clipped,
        final_loss=final_loss if final_loss is not None and math.isfinite(final_loss) else None,
        **data_evidence(trainer.datamodule, records or [], **(evidence or {})),
        loss=str(loss) if loss is not None else None,
        target_columns=list(hparams.get("target_columns") or []),
        loss_dispersion=loss_dispersion(history.per_step()["losses"]),
    )


def rank_decisions(trainer: pl.Trainer, records: list[SpikeRecord]) -> list[dict[str, Any]]:
    """Each rank's own view of its decisions (count, skips, a digest of the spike steps). A collective: all ranks."""
    steps = ",".join(str(r.global_step) for r in records)
    mine = {
        "rank": trainer.global_rank,
        "spikes": len(records),
        "skipped": sum(r.skipped for r in records),
        "steps_digest": hashlib.sha1(steps.encode()).hexdigest()[:12],
    }
    return gather_objects(mine)


def worst_windows(trainer: pl.Trainer, windows: Mapping[str, torch.Tensor], count: int) -> list[dict[str, Any]]:
    """The ``count`` highest-loss windows of the step over all ranks, described by the data (a collective)."""
    ids, losses = windows["window_ids"].detach().cpu(), windows["window_losses"].detach().float().cpu()
    parts = gather_objects((ids.tolist(), losses.tolist()))
    all_ids = [i for part in parts for i in part[0]]
    all_losses = [v if math.isfinite(v) else math.inf for part in parts for v in part[1]]
    order = sorted(range(len(all_ids)), key=lambda i: -all_losses[i])[:count]
    if not order or not isinstance(trainer.datamodule, WindowDescriptions):
        return []
    table = trainer.datamodule.describe_windows([all_ids[i] for i in order], forecast=False)
    return [
        dict(row, window_id=int(row["window_id"]), loss=all_losses[i])
        for row, i in zip(table.to_dict("records"), order, strict=True)
    ]


def spike_record(
    trainer: pl.Trainer,
    step: StepContext,
    verdict: SpikeVerdict,
    threshold: float,
    grad: SpikeVerdict,
    top_windows: int,
) -> SpikeRecord:
    """The record of a spike at ``step`` (``verdict`` and ``grad``: the loss and gradient-norm detectors', ``threshold``
    the loss detector's); its windows are named from the module's ``last_train_step`` (none in loss-only mode)."""
    windows, loss = step.window_step, verdict.value
    top = worst_windows(trainer, windows, top_windows) if windows is not None else []
    size = len(windows["window_ids"]) if windows is not None else _batch_size(step.batch)
    nominal = getattr(trainer.train_dataloader, "batch_size", None) or size or 1
    return SpikeRecord(
        epoch=trainer.current_epoch,
        global_step=step.step,
        batch_idx=step.batch_idx,
        batches_in_epoch=batches_per_epoch(trainer),
        loss=loss,
        baseline=verdict.baseline,
        score=verdict.score,
        threshold=threshold,
        grad_norm=grad.value,
        grad_score=grad.score,
        grad_spike=grad.is_spike,
        lr=step.lr,
        batch_size=nominal if size is None else size,
        nominal_batch_size=int(nominal),
        nonfinite=not math.isfinite(loss),
        skipped=False,
        top_windows=top,
    )


def _batch_size(batch: Any) -> int | None:
    try:
        return extract_batch_size(batch)
    except Exception:  # noqa: BLE001 - a batch without a tensor: the size is unknown, not an error
        return None


def save_batch(trainer: pl.Trainer, batch: Any, record: SpikeRecord, folder: Path) -> None:
    """Every rank's batch of the spike in ``folder/spike_batches/step<global step>.pt`` (a collective)."""
    parts = gather_objects(apply_to_collection(batch, torch.Tensor, lambda t: t.detach().cpu()))
    if trainer.is_global_zero:
        folder = folder / "spike_batches"
        folder.mkdir(parents=True, exist_ok=True)
        torch.save({"record": record.to_dict(), "ranks": parts}, folder / f"step{record.global_step:07d}.pt")

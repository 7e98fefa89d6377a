"""The loss-spike callback: detect before the optimizer step, act (log, skip, stop, save the batch), explain.

On by default in ``configs/default.yaml`` (group ``spikes``); open TensorBoard's Custom Scalars tab, "Stability".
Works with any LightningModule: what it needs from the module and the data is in :mod:`.contracts`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from lightning_lstm.callbacks import spike_figure, spike_pending, spike_summary, spike_tensorboard
from lightning_lstm.callbacks.contracts import STEP_KEYS, spike_contracts
from lightning_lstm.callbacks.run_io import run_dir, tensorboard_writer
from lightning_lstm.callbacks.spike_decision import SpikeDecision
from lightning_lstm.spikes.detector import SpikeDetector
from lightning_lstm.spikes.device_detector import as_kind
from lightning_lstm.spikes.learning_rate import LearningRateHistory
from lightning_lstm.spikes.norms import GradNormHistory
from lightning_lstm.spikes.records import SpikeRecord
from lightning_lstm.spikes.report import summary_markdown

log = logging.getLogger(__name__)

Action = Literal["log", "skip", "stop", "save_batch"]
ActOn = Literal["loss", "loss_or_grad_norm"]
ACTIONS = get_args(Action)
ACT_ON = get_args(ActOn)


class LossSpikeCallback(SpikeDecision, Callback):
    """Scores every step's training loss and gradient norm (before clipping) against a robust rolling baseline.

    The decision is taken in ``on_before_optimizer_step``: after backward (and after AMP unscaling), before gradient
    clipping and the optimizer step, so ``skip`` can still cancel the update by dropping the gradients (optimizers
    leave parameters without a gradient, and their state, untouched; clipping and GradScaler cope with it). Under DDP
    the ranks' losses are gathered once per step (one small collective, no barrier) and every rank scores their mean,
    so all ranks reach the same decision; at the end each rank's decisions are compared in ``spikes.json``. Only rank
    zero writes.

    Loss-only mode: a module without ``last_train_step`` (:class:`~.contracts.StepWindowLosses`) is scored on the loss
    its ``training_step`` returns, in ``on_train_batch_end``, after the update: spikes are detected, logged and
    reported, with no windows named; ``skip`` is an error and ``stop`` keeps the spiking update. A warning at setup
    says so.

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
        self._deferred = spike_pending.DeferredDecisions()  # device decisions, read one step late
        self._unscored = spike_pending.UnscoredSteps()  # host detectors: steps read and scored in batches
        self.actions = set(actions) | {"log"}
        self.act_on = act_on
        self.stop_after = stop_after
        self.top_windows = top_windows
        self.log_every_n_steps = log_every_n_steps
        self.max_saved_batches = max_saved_batches
        self.max_text_entries = max_text_entries
        self.records: list[SpikeRecord] = []
        self.lrs = LearningRateHistory()
        self.norms = GradNormHistory()
        self.history = spike_figure.LossHistory()  # per-step loss and threshold: the "loss with spikes" figure
        self.context = None  # the diagnosis' RunContext of the last fit (set at its end)
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
            spike_tensorboard.write_layout(writer, spike_tensorboard.clip_norm(trainer) is not None)
            self._layout_written_to = self._run_dir

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
        ranks = [] if self._interrupted else spike_summary.rank_decisions(trainer, self.records)
        if not trainer.is_global_zero:
            return
        losses = self.loss_detector.state_dict()["values"]  # the rolling window: the loss the run ended at
        self.context, findings, sentences = spike_summary.diagnose_run(
            trainer, self.epochs_seen, self.lrs, self.norms, losses, self.records
        )
        left_out = max(0, len(self.records) - self.max_text_entries)  # beyond the per-spike report's cap
        summary = summary_markdown(self.records, trainer.global_step, self.epochs_seen, sentences, self.stop_reason,
                                   left_out)  # fmt: skip
        writer = tensorboard_writer(trainer)
        folder = self._run_dir or run_dir(trainer)
        spike_figure.write_loss_figure(writer, folder, self.history, self.records, trainer.global_step)
        if writer is not None:
            writer.add_text("spikes/summary", summary, trainer.global_step)
            writer.add_text("spikes/diagnosis", "\n\n".join(sentences), trainer.global_step)
            writer.flush()
        path = folder / "spikes.json"
        spike_summary.write_report(
            path, trainer, self.records, epochs=self.epochs_seen, stop_reason=self.stop_reason,
            sentences=sentences, settings=self._settings(), ranks=ranks, findings=findings,
        )  # fmt: skip
        log.info("Loss spikes: %s", summary.replace("\n\n", "\n"))

    # -- state -----------------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        self._settle_deferred(None, keep_last=False)
        return {
            "loss_detector": self.loss_detector.state_dict(),
            "grad_detector": self.grad_detector.state_dict(),
            "records": [r.to_dict() for r in self.records],
            **self.lrs.state_dict(),
            "grad_norms": self.norms.state_dict(),
            "loss_history": self.history.state_dict(),
            "saved_batches": self.saved_batches,
            "epochs_seen": self.epochs_seen,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.loss_detector.load_state_dict(state_dict["loss_detector"])
        self.grad_detector.load_state_dict(state_dict["grad_detector"])
        self.records = [SpikeRecord.from_dict(r) for r in state_dict["records"]]
        self.lrs.load_state_dict(state_dict)
        if "grad_norms" in state_dict:  # checkpoints written before the norm history was kept have none
            self.norms.load_state_dict(state_dict["grad_norms"])
        self.history.load_state_dict(state_dict.get("loss_history"))  # None in checkpoints from before it was kept
        self.saved_batches = state_dict.get("saved_batches", 0)
        self.epochs_seen = state_dict.get("epochs_seen", 0)

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

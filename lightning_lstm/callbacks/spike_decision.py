"""How the loss-spike callback scores one optimizer step and acts on a spike (skip, stop, save the batch, report).

A mixin of :class:`~.loss_spikes.LossSpikeCallback`, apart so that the callback file holds its hooks and state and
this one the decision: on the host (steps read and scored in batches; one read per step when ``skip`` or ``stop``
must know before the update, or ``save_batch`` would otherwise hold 32 batches) or on the training device (verdicts
read one step late).
"""

from __future__ import annotations

import math

import lightning.pytorch as pl
import torch

from lightning_lstm.callbacks import spike_pending, spike_summary, spike_tensorboard
from lightning_lstm.callbacks.run_io import run_dir, tensorboard_writer
from lightning_lstm.callbacks.spike_evidence import save_batch, spike_record
from lightning_lstm.model.module import logs_this_step
from lightning_lstm.spikes.device_detector import DeviceSpikeDetector
from lightning_lstm.spikes.records import SpikeRecord
from lightning_lstm.spikes.report import spike_markdown


class SpikeDecision:
    """Scoring and acting, over the state :class:`~.loss_spikes.LossSpikeCallback` keeps (detectors, records, ...)."""

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
        context = dict(lr=lr, step=step, batch_idx=self._batch_idx, window_step=window_step, batch=self._batch,
                       log_step=log_step)  # fmt: skip
        waits = optimizer is not None and bool(self.actions & {"skip", "stop"})  # the update waits for the decision
        if not isinstance(self.loss_detector, DeviceSpikeDetector):
            if waits or "save_batch" in self.actions:  # one read per step (save_batch: no queue of whole batches)
                loss, grad_norm = torch.stack([loss_t.float(), grad_t.float().to(loss_t.device)]).tolist()
                self._score_on_host(trainer, loss, grad_norm, optimizer, context)
            else:  # read and scored in batches (spike_pending.UnscoredSteps); per-window records need no batch
                context["batch"] = None if self.per_window else context["batch"]
                self._unscored.add(loss_t.detach(), grad_t.detach(), context)
            return
        values = torch.stack([loss_t.float(), grad_t.float().to(loss_t.device)])
        loss_v, grad_v = self.loss_detector.update(values[0]), self.grad_detector.update(values[1])  # on the device
        spike_t = loss_v.is_spike | ~torch.isfinite(grad_v.value) | (grad_v.is_spike & (self.act_on != "loss"))
        packed = spike_pending.pack(loss_v, grad_v, spike_t)  # (13,) float64 on the device
        if waits:
            self._settle(trainer, *spike_pending.unpack(packed.tolist()), optimizer, **context)
        else:
            self._deferred.start(packed, **context)

    def _score_on_host(self, trainer, loss: float, grad_norm: float, optimizer, context: dict) -> None:
        """The host detectors' verdicts on one step, then acting on them."""
        verdict, grad = self.loss_detector.update(loss), self.grad_detector.update(grad_norm)
        spike = verdict.is_spike or not math.isfinite(grad_norm) or (self.act_on != "loss" and grad.is_spike)
        self._settle(trainer, verdict, grad, spike, optimizer, **context)

    def _settle_deferred(self, trainer: pl.Trainer | None, keep_last: bool) -> None:
        """Acts on the steps scored later: device decisions one step late, host batches once full (or all of them)."""
        trainer = trainer or self._trainer
        for loss, grad_norm, context in self._unscored.due(all_of_them=not keep_last):
            self._score_on_host(trainer, loss, grad_norm, None, context)
        for pending, values in self._deferred.due(keep_last):
            context = {k: getattr(pending, k) for k in ("lr", "step", "batch_idx", "window_step", "batch", "log_step")}
            self._settle(trainer, *spike_pending.unpack(values), None, **context)

    def _settle(
        self, trainer, verdict, grad, spike, optimizer, *, lr, step, batch_idx, window_step, batch, log_step
    ) -> None:
        """Acts on one scored step on the host: history, records and actions; ``optimizer`` None: update done."""
        loss, grad_norm = verdict.value, grad.value
        self.epochs_seen = max(self.epochs_seen, trainer.current_epoch + 1)
        self.lrs.update(lr, step)
        self.norms.update(grad_norm, trainer.gradient_clip_val or None)
        self.history.append(step, loss, verdict, self.loss_detector.threshold, trainer.current_epoch)
        if spike:
            record = spike_record(
                trainer, step, batch_idx, loss, verdict, self.loss_detector.threshold, grad_norm, grad, lr,
                windows=window_step, batch=batch, top_windows=self.top_windows,
            )  # fmt: skip
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
        if self._log_every and (spike or log_step):
            writer = tensorboard_writer(trainer)
            if writer is not None:
                series = spike_tensorboard.detector_values(
                    verdict, grad, self.loss_detector.threshold, self.grad_detector.threshold, spike, len(self.records)
                )
                spike_tensorboard.write_scalars(writer, series, step, spike_tensorboard.clip_norm(trainer))

    def _report(self, trainer: pl.Trainer, record: SpikeRecord) -> None:
        if not trainer.is_global_zero:
            return
        spike_summary.log_spike(record)
        writer = tensorboard_writer(trainer)
        if writer is not None and len(self.records) <= self.max_text_entries:
            writer.add_text("spikes/report", spike_markdown(record), record.global_step)

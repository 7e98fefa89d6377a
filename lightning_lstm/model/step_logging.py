"""What a training step writes at Lightning's logging steps, straight to the loggers.

``LightningModule.log`` costs 0.2-0.3 ms of host time per call (Lightning 2.6 moves each ``_ResultMetric`` to the
value's device with ``apply_to_collection`` on every call, and rebuilds the results' metrics after every batch while a
step key is registered): more than a small model's whole step on a GPU. The step scalars that only the loggers read
(``train/loss_step``, ``train/grad_norm``) are therefore kept as tensors at the logging step and written here once
the update is done (as Lightning reads them: no host read between ``training_step`` and the update), at the step
and with the ``epoch`` scalar that Lightning would give them, in one ``log_metrics`` call (one TensorBoard event).
Epoch and validation metrics still go through ``self.log``.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch


def logs_this_step(trainer: pl.Trainer | None, every: int | None = None, step: int | None = None) -> bool:
    """Whether Lightning writes step metrics for optimizer step ``step`` (default: the one now running).

    Lightning 2.6's rule (``_LoggerConnector.should_update_logs``) on public attributes: every ``every``-th step
    (default ``trainer.log_every_n_steps``) counted from 1, the step a fit stops at, and every ``fast_dev_run`` step.
    """
    if trainer is None:
        return True
    n = trainer.log_every_n_steps if every is None else every
    step = trainer.global_step if step is None else step
    return bool(trainer.fast_dev_run) or trainer.should_stop or (n > 0 and (step + 1) % n == 0)


def write_step_scalars(trainer: pl.Trainer | None, scalars: dict[str, torch.Tensor | float], step: int) -> None:
    """Writes ``scalars`` and ``epoch`` to every logger at optimizer step ``step`` (counted before its update), as
    Lightning writes ``self.log(on_step=True)`` values after the update: one host read for all tensors, one
    ``log_metrics`` call."""
    if trainer is None or not trainer.loggers:
        return
    names = list(scalars)
    tensors = [torch.as_tensor(scalars[name]).detach().float().reshape(()) for name in names]
    device = tensors[0].device
    values = torch.stack([t.to(device) for t in tensors]).tolist()  # (S,) -> one read
    metrics = {**dict(zip(names, values, strict=True)), "epoch": trainer.current_epoch}
    for logger in trainer.loggers:
        logger.log_metrics(metrics, step=step)

"""The spike callback's end of fit: what the run looked like (for the diagnosis), each rank's view, ``spikes.json``.

``spikes.json`` keys: ``total_steps``, ``epochs``, ``stop_reason``, ``diagnosis`` (sentences), ``findings`` (each
cause with its evidence, confidence, advice, config overlay and named values), ``settings`` (the
detector's), ``ranks`` (each rank's count, skips and a digest of its spike steps: they must agree), ``spikes``
(every :class:`~lightning_lstm.spikes.records.SpikeRecord`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from lightning_lstm.callbacks.contracts import BatchSettings, loader_shuffles
from lightning_lstm.callbacks.run_io import gather_objects
from lightning_lstm.callbacks.spike_context import data_evidence
from lightning_lstm.checkpoint_io import write_atomically
from lightning_lstm.spikes.causes import find_causes
from lightning_lstm.spikes.diagnosis import Finding, RunContext, diagnose, findings_dicts
from lightning_lstm.spikes.learning_rate import LearningRateHistory
from lightning_lstm.spikes.norms import GradNormHistory, median_or_none
from lightning_lstm.spikes.records import SpikeRecord

log = logging.getLogger(__name__)


def batches_per_epoch(trainer: pl.Trainer) -> int | None:
    """Training batches per epoch, ``None`` for an iterable dataset without a length."""
    batches = trainer.num_training_batches
    return int(batches) if math.isfinite(batches) else None


def run_context(
    trainer: pl.Trainer,
    epochs_seen: int,
    lrs: LearningRateHistory,
    norms: GradNormHistory | None = None,
    final_loss: float | None = None,
    records: list[SpikeRecord] | None = None,
) -> RunContext:
    """The run as the diagnosis needs it: batches from the training DataLoader, outliers from the data's hparams,
    the gradient-norm distribution, and what the data add (:func:`~.spike_context.data_evidence`: the values inside
    the spikes' windows, the targets' level, what outlier clipping would cut)."""
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
        grad_norm_quantiles=norms.quantiles() if norms is not None else {},
        clip_engaged_steps=norms.clipped if norms is not None else None,
        final_loss=final_loss if final_loss is not None and math.isfinite(final_loss) else None,
        **data_evidence(trainer.datamodule, records or []),
    )


def diagnose_run(
    trainer: pl.Trainer,
    epochs_seen: int,
    lrs: LearningRateHistory,
    norms: GradNormHistory,
    losses: list[float],
    records: list[SpikeRecord],
) -> tuple[RunContext, list[Finding], list[str]]:
    """The run's context, the rules' findings and the diagnosis sentences (``losses``: the detector's last window)."""
    context = run_context(trainer, epochs_seen, lrs, norms, median_or_none(losses), records)
    findings = find_causes(records, context)
    return context, findings, diagnose(records, context, findings)


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


def write_report(
    path: Path,
    trainer: pl.Trainer,
    records: list[SpikeRecord],
    *,
    epochs: int,
    stop_reason: str | None,
    sentences: list[str],
    settings: dict[str, Any],
    ranks: list[dict[str, Any]],
    findings: list[Finding] | None = None,
) -> None:
    """Writes ``spikes.json`` (rank zero, atomically: a kill or a full disk never leaves half a file); logs an error
    when the ranks' decisions differ."""
    report = {
        "total_steps": trainer.global_step,
        "epochs": epochs,
        "stop_reason": stop_reason,
        "diagnosis": sentences,
        "findings": findings_dicts(findings or []),
        "settings": settings,
        "ranks": ranks,
        "spikes": [r.to_dict() for r in records],
    }
    text = json.dumps(report, indent=2).encode()
    key = "trainer.logger.init_args.save_dir" if trainer.logger is not None else "trainer.default_root_dir"
    write_atomically(path, lambda file: file.write(text), key)
    if len({(r["spikes"], r["skipped"], r["steps_digest"]) for r in ranks}) > 1:
        log.error("the ranks disagree on the loss spikes (a bug, please report): %s", ranks)


def log_spike(record: SpikeRecord) -> None:
    """One console line per spike (rank zero): where, how big, the worst windows, whether the update was skipped."""
    several = len({w["series"] for w in record.top_windows}) > 1
    where = ", ".join((f"{w['series']} " if several else "") + f"{w['target_start']}" for w in record.top_windows[:2])
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

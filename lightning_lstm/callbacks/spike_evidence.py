"""What one spike leaves behind: its record (with the batch's worst windows, from every rank) and the saved batch."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.apply_func import apply_to_collection
from lightning.pytorch.utilities.data import extract_batch_size

from lightning_lstm.callbacks.contracts import WindowDescriptions
from lightning_lstm.callbacks.run_io import gather_objects
from lightning_lstm.callbacks.spike_summary import batches_per_epoch
from lightning_lstm.spikes.detector import SpikeVerdict
from lightning_lstm.spikes.records import SpikeRecord


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
    step: int,
    batch_idx: int,
    loss: float,
    verdict: SpikeVerdict,
    threshold: float,
    grad_norm: float,
    grad: SpikeVerdict,
    lr: float,
    *,
    windows: Mapping[str, torch.Tensor] | None,
    batch: Any,
    top_windows: int,
) -> SpikeRecord:
    """The record of a spike at optimizer step ``step``; ``windows`` is the module's ``last_train_step`` (or None)."""
    top = worst_windows(trainer, windows, top_windows) if windows is not None else []
    size = len(windows["window_ids"]) if windows is not None else _batch_size(batch)
    nominal = getattr(trainer.train_dataloader, "batch_size", None) or size or 1
    return SpikeRecord(
        epoch=trainer.current_epoch,
        global_step=step,
        batch_idx=batch_idx,
        batches_in_epoch=batches_per_epoch(trainer),
        loss=loss,
        baseline=verdict.baseline,
        score=verdict.score,
        threshold=threshold,
        grad_norm=grad_norm,
        grad_score=grad.score,
        grad_spike=grad.is_spike,
        lr=lr,
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

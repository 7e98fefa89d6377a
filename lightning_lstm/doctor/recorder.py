"""What one doctor run measures besides the spike callback (validation per epoch), and its numbers for the result file.

The per-step series (loss, gradient norm, learning rate) are the spike callback's run history
(:class:`~lightning_lstm.spikes.history.RunHistory`); the doctor's worker adds :class:`ValidationScores` to the trainer
of each probe or candidate run (``fit`` on its own never carries it) and writes :func:`recorder_summary`.
"""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import numpy as np
from lightning.pytorch.callbacks import Callback

from lightning_lstm.spikes.history import QUANTILES, RunHistory


class ValidationScores(Callback):
    """Keeps the validation scores of each epoch (``mae``, ``rmse``, ``loss``), read in ``on_validation_end``, after
    the module has logged them."""

    def __init__(self) -> None:
        self.val: list[dict[str, float]] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        row = {"epoch": int(trainer.current_epoch)}
        for key in ("val/mae", "val/rmse", "val/loss"):
            if key in metrics:
                row[key.split("/")[1]] = float(metrics[key])
        self.val.append(row)


def recorder_summary(history: RunHistory, val: list[dict[str, float]], gradient_clip_val: float | None) -> dict:
    """Plain numbers for the result file: per-step series, norm quantiles, steps clipping engaged on, val MAE.

    ``end_val_mae`` is the mean validation MAE of the last third of the epochs (``None`` if any epoch's was not
    finite): what the run reached, not a lucky early epoch of an unstable run.
    """
    series = history.per_step()
    norms = np.asarray([n for n in series["grad_norms"] if math.isfinite(n)], dtype=float)
    quantiles: dict[str, Any] = {}
    if len(norms):
        for q in QUANTILES:
            quantiles[f"q{round(q * 100)}"] = float(np.quantile(norms, q))
    maes = [row["mae"] for row in val if "mae" in row and math.isfinite(row["mae"])]
    last = maes[-math.ceil(len(val) / 3) :] if len(maes) == len(val) else []
    return {
        **series,  # steps, epochs, losses, grad_norms, lrs
        "grad_norm_quantiles": quantiles,
        "clip_engaged_steps": int((norms > gradient_clip_val).sum()) if gradient_clip_val else 0,
        "val": val,
        "best_val_mae": min(maes) if maes else None,
        "end_val_mae": float(np.mean(last)) if last else None,
        "final_val_mae": val[-1].get("mae") if val else None,
    }

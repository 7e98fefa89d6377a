"""What one doctor run measures besides the spike callback: every step's loss and gradient norm, validation per epoch.

The doctor's worker adds :class:`ProbeRecorder` to the trainer of each probe or candidate run; ``fit`` on its own never
carries it.
"""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import numpy as np
from lightning.pytorch.callbacks import Callback


class ProbeRecorder(Callback):
    """Keeps each optimizer step's training loss and pre-clip gradient norm, and the validation scores of each epoch.

    The loss and norm are read once per step (one host sync), which a probe of a few hundred steps can afford.
    Validation scores are read in ``on_validation_end``, after the module has logged them.
    """

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.epochs: list[int] = []
        self.losses: list[float] = []
        self.grad_norms: list[float] = []
        self.lrs: list[float] = []
        self.val: list[dict[str, float]] = []

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        step = getattr(pl_module, "last_train_step", None)
        if not step:
            return
        self.steps.append(int(trainer.global_step))
        self.epochs.append(int(trainer.current_epoch))
        self.losses.append(float(step["loss"]))
        self.grad_norms.append(float(pl_module.pre_clip_grad_norm()))
        self.lrs.append(float(optimizer.param_groups[0]["lr"]))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        row = {"epoch": int(trainer.current_epoch)}
        for key in ("val/mae", "val/rmse", "val/loss"):
            if key in metrics:
                row[key.split("/")[1]] = float(metrics[key])
        self.val.append(row)

    def summary(self, gradient_clip_val: float | None) -> dict[str, Any]:
        """Plain numbers for the result file: per-step series, norm quantiles, steps clipping engaged on, val MAE.

        ``end_val_mae`` is the mean validation MAE of the last third of the epochs (``None`` if any epoch's was not
        finite): what the run reached, not a lucky early epoch of an unstable run.
        """
        norms = np.asarray([n for n in self.grad_norms if math.isfinite(n)], dtype=float)
        quantiles = {}
        if len(norms):
            for q in (0.5, 0.9, 0.95, 0.99, 1.0):
                quantiles[f"q{round(q * 100)}"] = float(np.quantile(norms, q))
        maes = [row["mae"] for row in self.val if "mae" in row and math.isfinite(row["mae"])]
        last = maes[-math.ceil(len(self.val) / 3) :] if len(maes) == len(self.val) else []
        return {
            "steps": self.steps,
            "epochs": self.epochs,
            "losses": self.losses,
            "grad_norms": self.grad_norms,
            "lrs": self.lrs,
            "grad_norm_quantiles": quantiles,
            "clip_engaged_steps": int((norms > gradient_clip_val).sum()) if gradient_clip_val else 0,
            "val": self.val,
            "best_val_mae": min(maes) if maes else None,
            "end_val_mae": float(np.mean(last)) if last else None,
            "final_val_mae": self.val[-1].get("mae") if self.val else None,
        }

"""Forecast scores on the original scale, and the same windows scored for naive and seasonal-naive forecasts.

Scores use observed targets only: a batch's ``observed`` (B, H, T) mask (present when ``data.missing`` filled some
target value, see :mod:`lightning_lstm.data.gaps`) leaves filled values out of every loss, score and backtest truth.
"""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import Metric, MetricCollection
from torchmetrics.regression import (
    MeanAbsoluteError,
    MeanSquaredError,
    R2Score,
    SymmetricMeanAbsolutePercentageError,
    WeightedMeanAbsolutePercentageError,
)


def window_losses(error: torch.Tensor, observed: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(B, H, T)`` element losses -> ``(B,)`` each window's mean over its observed targets, and ``(B,)`` weights:
    1 for a window with an observed target, 0 without one (``None`` when every target is observed)."""
    if observed is None:
        return error.mean(dim=(1, 2)), None
    mask = observed.to(error.dtype)
    seen = mask.sum(dim=(1, 2))  # (B,)
    return (error * mask).sum(dim=(1, 2)) / seen.clamp(min=1), (seen > 0).to(error.dtype)


def observed_values(
    forecast: torch.Tensor, truth: torch.Tensor, observed: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat forecasts and truths of the observed (window, step, target) values only."""
    if observed is None:
        return forecast.flatten(), truth.flatten()
    return forecast[observed], truth[observed]


def observed_truth(truth: torch.Tensor, observed: torch.Tensor | None) -> torch.Tensor:
    """``truth`` with filled (not observed) values as NaN: backtest files never show a filled value as truth."""
    return truth if observed is None else truth.masked_fill(~observed, float("nan"))


class StepMAE(Metric):
    """MAE per horizon step over the observed (window, target) values: ``(H,)``."""

    full_state_update = False

    def __init__(self, horizon: int) -> None:
        super().__init__()
        self.add_state("abs_error", default=torch.zeros(horizon), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros(horizon), dist_reduce_fx="sum")

    def update(self, forecast: torch.Tensor, truth: torch.Tensor, observed: torch.Tensor | None = None) -> None:
        error = (forecast - truth).abs()  # (B, H, T)
        mask = torch.ones_like(error) if observed is None else observed.to(error.dtype)
        self.abs_error += (error * mask).sum(dim=(0, 2))
        self.count += mask.sum(dim=(0, 2))

    def compute(self) -> torch.Tensor:
        return self.abs_error / self.count


def forecast_metrics(prefix: str) -> MetricCollection:
    """MAE, RMSE, WAPE (sum |error| / sum |truth|), sMAPE and R2 over every (window, step, target) value."""
    return MetricCollection(
        {
            "mae": MeanAbsoluteError(),
            "rmse": MeanSquaredError(squared=False),
            "wape": WeightedMeanAbsolutePercentageError(),
            "smape": SymmetricMeanAbsolutePercentageError(),
            "r2": R2Score(),
        },
        prefix=prefix,
    )


class BaselineComparison(nn.Module):
    """MAE of the model, the naive (last value) and seasonal-naive forecasts on the same windows, and their ratios.

    A ratio below 1 means the LSTM beats that baseline (a MASE-style relative error).
    """

    def __init__(self, horizon: int) -> None:
        super().__init__()
        self.model_mae = MeanAbsoluteError()
        self.naive_mae = MeanAbsoluteError()
        self.seasonal_model_mae = MeanAbsoluteError()
        self.seasonal_naive_mae = MeanAbsoluteError()
        self.per_step_mae = StepMAE(horizon)

    def update(self, forecast: torch.Tensor, batch: dict[str, torch.Tensor]) -> None:
        """``forecast`` and the batch's ``y_raw`` / baselines: (B, H, T) on the original scale; observed values only."""
        truth, observed = batch["y_raw"], batch.get("observed")
        self.model_mae.update(*observed_values(forecast, truth, observed))
        self.naive_mae.update(*observed_values(batch["naive"], truth, observed))
        self.per_step_mae.update(forecast, truth, observed)
        valid = batch["seasonal_valid"]
        if valid.any():
            seen = None if observed is None else observed[valid]
            self.seasonal_model_mae.update(*observed_values(forecast[valid], truth[valid], seen))
            self.seasonal_naive_mae.update(*observed_values(batch["seasonal_naive"][valid], truth[valid], seen))

    def compute(self, prefix: str) -> dict[str, torch.Tensor]:
        scores = {
            f"{prefix}naive_mae": self.naive_mae.compute(),
            f"{prefix}mae_ratio_naive": self.model_mae.compute() / self.naive_mae.compute(),
        }
        for step, mae in enumerate(self.per_step_mae.compute().reshape(-1), start=1):
            scores[f"{prefix}mae_step_{step}"] = mae
        seasonal_naive = self.seasonal_naive_mae.compute()  # NaN when no window has a season of history
        if torch.isfinite(seasonal_naive):  # identical on every rank after the metric's sync
            scores[f"{prefix}seasonal_naive_mae"] = seasonal_naive
            scores[f"{prefix}mae_ratio_seasonal_naive"] = self.seasonal_model_mae.compute() / seasonal_naive
        return scores

    def reset(self) -> None:
        for metric in (
            self.model_mae,
            self.naive_mae,
            self.seasonal_model_mae,
            self.seasonal_naive_mae,
            self.per_step_mae,
        ):
            metric.reset()

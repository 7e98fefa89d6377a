"""Forecast scores on the original scale, and the same windows scored for naive and seasonal-naive forecasts."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.regression import (
    MeanAbsoluteError,
    MeanSquaredError,
    R2Score,
    SymmetricMeanAbsolutePercentageError,
    WeightedMeanAbsolutePercentageError,
)


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
        self.per_step_mae = MeanAbsoluteError(num_outputs=horizon)

    def update(self, forecast: torch.Tensor, batch: dict[str, torch.Tensor]) -> None:
        """``forecast`` and the batch's ``y_raw`` / baselines: (B, H, T) on the original scale."""
        truth = batch["y_raw"]
        self.model_mae.update(forecast.flatten(), truth.flatten())
        self.naive_mae.update(batch["naive"].flatten(), truth.flatten())
        self.per_step_mae.update(
            forecast.transpose(1, 2).reshape(-1, truth.shape[1]), truth.transpose(1, 2).reshape(-1, truth.shape[1])
        )  # (B*T, H)
        valid = batch["seasonal_valid"]
        if valid.any():
            self.seasonal_model_mae.update(forecast[valid].flatten(), truth[valid].flatten())
            self.seasonal_naive_mae.update(batch["seasonal_naive"][valid].flatten(), truth[valid].flatten())

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

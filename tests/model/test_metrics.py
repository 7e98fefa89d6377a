"""Losses and scores over observed targets only: filled targets (``observed`` False) change no loss, score or truth."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_lstm.model.metrics import (
    BaselineComparison,
    StepMAE,
    observed_truth,
    observed_values,
    window_losses,
)

# Two windows, horizon 2, one target: window 0 has its second target filled, window 1 has both filled.
ERROR = torch.tensor([[[1.0], [9.0]], [[5.0], [7.0]]])  # (B, H, T)
OBSERVED = torch.tensor([[[True], [False]], [[False], [False]]])


def test_window_losses_average_observed_targets_and_weigh_out_windows_without_one() -> None:
    per_window, weight = window_losses(ERROR, OBSERVED)
    assert per_window.tolist() == [1.0, 0.0] and weight.tolist() == [1.0, 0.0]
    per_window, weight = window_losses(ERROR, None)
    assert per_window.tolist() == [5.0, 6.0] and weight is None


def test_observed_values_and_truth_leave_filled_values_out() -> None:
    forecast, truth = observed_values(ERROR + 1, ERROR, OBSERVED)
    assert forecast.tolist() == [2.0] and truth.tolist() == [1.0]
    blanked = observed_truth(ERROR, OBSERVED)
    assert blanked[0, 0, 0] == 1.0 and sum(math.isnan(v) for v in blanked.flatten().tolist()) == 3
    assert observed_truth(ERROR, None) is ERROR


def test_step_mae_counts_observed_values_per_step() -> None:
    forecast = torch.zeros(2, 2, 1)
    metric = StepMAE(2)
    metric.update(forecast, ERROR, torch.tensor([[[True], [True]], [[True], [False]]]))
    assert metric.compute().tolist() == [3.0, 9.0]  # step 1: |1| and |5|; step 2: |9| only
    metric.reset()
    metric.update(forecast, ERROR)
    assert metric.compute().tolist() == [3.0, 8.0]


def test_baselines_score_observed_values_only() -> None:
    truth = torch.tensor([[[10.0], [20.0]], [[30.0], [40.0]]])
    batch = {
        "y_raw": truth,
        "naive": torch.full((2, 2, 1), 10.0),
        "seasonal_naive": torch.zeros(2, 2, 1),
        "seasonal_valid": torch.tensor([True, False]),
        "observed": torch.tensor([[[True], [False]], [[True], [True]]]),
    }
    scores = BaselineComparison(2)
    scores.update(truth + 2.0, batch)
    result = scores.compute("test/")
    assert result["test/naive_mae"] == pytest.approx((0 + 20 + 30) / 3)  # the filled target (20) left out
    assert result["test/mae_step_2"] == pytest.approx(2.0) and result["test/mae_step_1"] == pytest.approx(2.0)
    assert result["test/seasonal_naive_mae"] == pytest.approx(10.0)  # window 0, its observed first step only

"""Scaling and clipping: fitted on the training rows alone (checked by hand with numpy), inverse(transform(x)) == x."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lightning_lstm import robust
from lightning_lstm.data import column_stats
from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.data.dataset import SPREAD_FLOOR
from lightning_lstm.data.scaling import SCALERS, inverse, to_original_scale, transform

ROWS = 300


def two_column_csv(tmp_path: Path, name: str = "two.csv", test_outlier: float | None = None) -> Path:
    """Columns ``a`` (trend + noise, 3 spikes of +100 in the training span) and ``b`` (noise); daily dates."""
    rng = np.random.default_rng(1)
    t = np.arange(ROWS)
    a = 20 + 0.05 * t + rng.standard_normal(ROWS)
    a[[30, 60, 90]] += 100.0
    if test_outlier is not None:
        a[ROWS - 10] = test_outlier
    table = pd.DataFrame(
        {"date": pd.date_range("2021-01-01", periods=ROWS, freq="D"), "a": a, "b": 3 * rng.standard_normal(ROWS)}
    )
    path = tmp_path / name
    table.to_csv(path, index=False)
    return path


def fitted(path: Path, **options) -> TimeSeriesDataModule:
    options = {
        "target_columns": ["a"],
        "feature_columns": ["a", "b"],
        "lookback": 10,
        "horizon": 3,
        "window_norm": "none",
        "shuffle": False,
        **options,
    }
    dm = TimeSeriesDataModule(path=str(path), **options)
    dm.setup("fit")
    return dm


def training_rows(dm: TimeSeriesDataModule) -> np.ndarray:
    """``(n, C)`` float64 values of the training span, straight from the frame."""
    return dm.frame.values[: dm.bounds.val_row[0]].astype(np.float64)


def by_hand_scaling(train: np.ndarray, scaler: str) -> tuple[np.ndarray, np.ndarray]:
    if scaler == "standard":
        return train.mean(axis=0), train.std(axis=0)
    if scaler == "minmax":
        return train.min(axis=0), train.max(axis=0) - train.min(axis=0)
    if scaler == "robust":
        q1, median, q3 = np.quantile(train, [0.25, 0.5, 0.75], axis=0)
        return median, q3 - q1
    return np.zeros(train.shape[1]), np.ones(train.shape[1])


def by_hand_bounds(train: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    if method == "quantile":
        return tuple(np.quantile(train, [0.01, 0.99], axis=0))
    if method == "iqr":
        q1, q3 = np.quantile(train, [0.25, 0.75], axis=0)
        return q1 - 3 * (q3 - q1), q3 + 3 * (q3 - q1)
    if method == "mad":
        median = np.median(train, axis=0)
        spread = 1.4826 * np.median(np.abs(train - median), axis=0)
        return median - 5 * spread, median + 5 * spread
    mean, std = train.mean(axis=0), train.std(axis=0)
    return mean - 5 * std, mean + 5 * std


@pytest.mark.parametrize("scaler", SCALERS)
def test_statistics_equal_numpy_on_the_training_rows(tmp_path: Path, scaler: str) -> None:
    dm = fitted(two_column_csv(tmp_path), scaler=scaler)
    train = training_rows(dm)
    assert len(train) == round(ROWS * 0.7)  # val_fraction = test_fraction = 0.15
    center, scale = by_hand_scaling(train, scaler)
    np.testing.assert_allclose(dm.stats.center[0], center, rtol=1e-12)
    np.testing.assert_allclose(dm.stats.scale[0], scale, rtol=1e-12)


@pytest.mark.parametrize("scaler", SCALERS)
def test_inverse_of_transform_is_the_identity(tmp_path: Path, scaler: str) -> None:
    dm = fitted(two_column_csv(tmp_path), scaler=scaler)
    center = torch.from_numpy(dm.stats.center[0]).float()  # (C,)
    scale = torch.from_numpy(dm.stats.scale[0]).float()
    values = torch.from_numpy(dm.frame.values)  # (N, C)
    torch.testing.assert_close(inverse(transform(values, center, scale), center, scale), values, rtol=1e-5, atol=1e-5)
    batch = dm.dataset("val").__getitems__(list(range(8)))  # the targets as the model's outputs are mapped back
    unscaled = to_original_scale(batch["y"], batch)  # what LSTMForecaster.to_original_scale calls
    torch.testing.assert_close(unscaled, batch["y_raw"], rtol=1e-5, atol=1e-4)


def test_inverse_holds_with_window_norm_last(tmp_path: Path) -> None:
    dm = fitted(two_column_csv(tmp_path), scaler="robust", window_norm="last")
    batch = dm.dataset("test").__getitems__(list(range(8)))
    assert torch.all(batch["x"][:, -1, :] == 0)  # every column relative to its last input
    unscaled = to_original_scale(batch["y"], batch)
    torch.testing.assert_close(unscaled, batch["y_raw"], rtol=1e-5, atol=1e-4)


def test_window_norm_standard_feeds_each_window_by_its_own_mean_and_spread(tmp_path: Path) -> None:
    dm = fitted(two_column_csv(tmp_path), window_norm="standard")
    batch = dm.dataset("test").__getitems__(list(range(8)))
    lookback, starts = dm.hparams.lookback, batch["window_id"].numpy()
    raw = np.stack([dm.frame.values[s : s + lookback] for s in starts])  # (B, L, C) original values
    scaled = (raw - dm.stats.center[0]) / dm.stats.scale[0]  # the training span's scaling
    spread = np.maximum(scaled.std(axis=1, keepdims=True), SPREAD_FLOOR)  # (B, 1, C)
    expected = (scaled - scaled.mean(axis=1, keepdims=True)) / spread
    np.testing.assert_allclose(batch["x"].numpy(), expected, rtol=1e-4, atol=1e-4)
    assert (spread > SPREAD_FLOOR).any()  # both cases met: a window divided by its own spread, ...
    assert (spread == SPREAD_FLOOR).any()  # ... and one whose spread is below the floor
    np.testing.assert_allclose(batch["target_scale"][:, 0].numpy(), dm.stats.scale[0][0] * spread[:, 0, 0], rtol=1e-5)
    unscaled = to_original_scale(batch["y"], batch)  # outputs map back through each window's statistics
    torch.testing.assert_close(unscaled, batch["y_raw"], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("method", ["quantile", "iqr", "mad", "zscore"])
def test_clip_bounds_come_from_the_training_span_only(tmp_path: Path, method: str) -> None:
    options = {"outliers": method, "outlier_quantiles": (0.01, 0.99)}
    dm = fitted(two_column_csv(tmp_path), **options)
    train = training_rows(dm)
    low, high = by_hand_bounds(train, method)
    np.testing.assert_allclose(dm.stats.clip_low[0], low, rtol=1e-12)
    np.testing.assert_allclose(dm.stats.clip_high[0], high, rtol=1e-12)
    counts = ((train < dm.stats.clip_low[0]) | (train > dm.stats.clip_high[0])).sum(axis=0)
    assert dm.stats.clipped == {"a": int(counts[0]), "b": int(counts[1])}
    # Scaling is fitted on the clipped training values (clipped in float32, as the windows are: hence rtol 1e-6).
    clipped = np.clip(train, dm.stats.clip_low[0], dm.stats.clip_high[0])
    np.testing.assert_allclose(dm.stats.center[0], clipped.mean(axis=0), rtol=1e-6)
    # A huge outlier in the test span changes nothing that was fitted.
    spiked = fitted(two_column_csv(tmp_path, "spiked.csv", test_outlier=1e9), **options)
    assert spiked.frame.values[:, 0].max() == np.float32(1e9)
    for key in ("clip_low", "clip_high", "center", "scale"):
        np.testing.assert_array_equal(getattr(spiked.stats, key), getattr(dm.stats, key))


def test_clipping_counts_spikes_per_column_and_applies_to_training_windows(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="lightning_lstm.data.datamodule"):
        dm = fitted(two_column_csv(tmp_path), outliers="iqr")
    assert dm.stats.clipped == {"a": 3, "b": 0}  # the three +100 spikes of column a; the noise stays inside 3 IQR
    assert "{'a': 3, 'b': 0}" in caplog.text
    train = dm.dataset("train")
    batch = train.__getitems__(list(range(len(train))))
    high = torch.tensor(dm.stats.clip_high[0], dtype=torch.float32)
    center, scale = torch.tensor(dm.stats.center[0]).float(), torch.tensor(dm.stats.scale[0]).float()
    assert torch.all(inverse(batch["x"], center, scale) <= high + 1e-3)  # inputs and targets clipped in training
    assert torch.all(inverse(batch["y"], center[:1], scale[:1]) <= high[0] + 1e-3)
    assert batch["y_raw"].max() > high[0] + 50  # the raw targets keep the spike for scoring


def test_column_statistics_match_numpy_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(column_stats, "CHUNK_ROWS", 7)  # many chunks, one partial
    rng = np.random.default_rng(3)
    values = rng.standard_normal((100, 2)).astype(np.float32) * 50 + 1000
    values[[5, 50], 1] = np.nan
    column = column_stats.finite_column(values, 10, 95, 1)
    expected = values[10:95, 1][np.isfinite(values[10:95, 1])].astype(np.float64)
    np.testing.assert_array_equal(column, expected.astype(np.float32))
    mean, std = column_stats.mean_std(column)
    np.testing.assert_allclose([mean, std], [expected.mean(), expected.std()], rtol=1e-12)
    for n in (1, 2, 5, 84):
        qs = [0.0, 0.005, 0.25, 0.5, 0.75, 0.995, 1.0]
        np.testing.assert_allclose(
            column_stats.quantiles_inplace(column[:n].copy(), qs), np.quantile(expected[:n], qs), rtol=1e-12
        )
        for values in (expected[:n], np.round(expected[:n] / 40) * 40):  # with and without ties
            median = np.median(values)
            mad = robust.median_abs_deviation(values.astype(np.float32), median)
            assert mad == pytest.approx(np.median(np.abs(values - median)), rel=1e-12, abs=1e-12)

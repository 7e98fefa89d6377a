"""Seasonal lags and the seasonal-naive baseline of a residual model, on a series whose values are their row numbers:
every lag input and baseline value is a row number that can be written down by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.data.device_windows import DeviceWindows
from lightning_lstm.data.loaders import window_loader
from lightning_lstm.data.scaling import to_original_scale

LOOKBACK, HORIZON, ROWS = 5, 3, 120
OPTIONS = {
    "time_column": "t",
    "target_columns": ["y"],
    "lookback": LOOKBACK,
    "horizon": HORIZON,
    "val_fraction": 0.2,
    "test_fraction": 0.2,
    "shuffle": False,
    "scaler": "none",
}


def rows_table(rows: int = ROWS) -> pd.DataFrame:
    """``y`` equal to the row number, and a second column ``x`` (ten times it) that the lags must not read."""
    return pd.DataFrame({"t": np.arange(rows), "y": np.arange(rows, dtype=float), "x": 10.0 * np.arange(rows)})


def fitted(table: pd.DataFrame | None = None, **options: object) -> TimeSeriesDataModule:
    dm = TimeSeriesDataModule(dataframe=rows_table() if table is None else table, **{**OPTIONS, **options})
    dm.setup("fit")
    return dm


def test_lag_inputs_are_the_target_one_lag_earlier_for_lookback_and_horizon() -> None:
    dm = fitted(seasonal_lags=[4, 10], season_length=4, feature_columns=["y", "x"])
    assert dm.num_known_features == 2  # one per lag and target, linked to model.future_size
    assert "seasonal_base" not in dm.dataset("train").__getitems__([0])  # only model.residual asks for it
    assert dm.serve_seasonal_base() == 4
    train = dm.dataset("train")
    batch = train.__getitems__([0, 1])
    start = int(batch["window_id"][0])
    assert start == 10  # the first window with max(lags) = 10 rows before its lookback
    steps = start + np.arange(LOOKBACK + HORIZON)  # rows of the lookback and the horizon
    expected = np.stack([steps - 4, steps - 10], axis=-1).astype(np.float32)  # (L + H, lags * T), lag-major
    np.testing.assert_array_equal(batch["known"][0].numpy(), expected)
    assert batch["known"].shape == (2, LOOKBACK + HORIZON, 2)
    np.testing.assert_array_equal(batch["seasonal_base"][0, :, 0].numpy(), start + LOOKBACK + np.arange(HORIZON) - 4)
    assert len(train) == len(fitted().dataset("train")) - 10  # windows without the history are skipped


def test_lags_and_baseline_are_scaled_and_normalised_as_the_targets() -> None:
    dm = fitted(seasonal_lags=[3], scaler="standard", window_norm="last")
    dm.serve_seasonal_base()
    batch = dm.dataset("val").__getitems__([0, 3])
    # The lag block and the baseline go back through the window's own target statistics to row numbers.
    lags = to_original_scale(batch["known"][:, LOOKBACK:, :], batch)  # horizon steps (B, H, 1)
    starts = batch["window_id"].numpy()[:, None]
    expected = starts + LOOKBACK + np.arange(HORIZON) - 3
    np.testing.assert_allclose(lags[:, :, 0].numpy(), expected, atol=1e-3)
    np.testing.assert_allclose(to_original_scale(batch["seasonal_base"], batch)[:, :, 0].numpy(), expected, atol=1e-3)
    assert batch["x"][:, -1, 0].abs().max() == 0  # window_norm: last (every input minus the last one)
    torch.testing.assert_close(batch["known"][:, 3:LOOKBACK, 0], batch["x"][:, : LOOKBACK - 3, 0])  # the same series


def test_a_lag_shorter_than_the_horizon_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"data\.seasonal_lags: lag 2 is shorter than data\.horizon = 3"):
        TimeSeriesDataModule(dataframe=rows_table(), **OPTIONS, seasonal_lags=[24, 2])
    with pytest.raises(ValueError, match=r"data\.seasonal_lags lists a lag twice"):
        TimeSeriesDataModule(dataframe=rows_table(), **OPTIONS, seasonal_lags=[4, 4])


def test_a_series_too_short_for_the_longest_lag_says_so() -> None:
    with pytest.raises(ValueError, match=r"max\(data\.seasonal_lags\) = 100 rows before its lookback") as error:
        fitted(seasonal_lags=[100])
    assert "the train split has no window" in str(error.value) and "a series needs at least" in str(error.value)


def test_forecast_windows_read_the_lags_from_the_series_end() -> None:
    trained = fitted(seasonal_lags=[4])
    dm = TimeSeriesDataModule(dataframe=rows_table(), **OPTIONS, seasonal_lags=[4])
    dm.load_state_dict(trained.state_dict())
    dm.setup("predict")
    dm.serve_seasonal_base()
    batch = dm.dataset("forecast").__getitems__([0])
    rows = ROWS - LOOKBACK + np.arange(LOOKBACK + HORIZON) - 4  # the horizon's lags: the last rows of the file
    np.testing.assert_array_equal(batch["known"][0, :, 0].numpy(), rows)
    np.testing.assert_array_equal(batch["seasonal_base"][0, :, 0].numpy(), ROWS + np.arange(HORIZON) - 4)
    assert "y" not in batch  # forecast windows: no targets, no future rows needed


def test_a_checkpoint_of_other_lags_is_refused() -> None:
    trained = fitted(seasonal_lags=[4])
    other = TimeSeriesDataModule(dataframe=rows_table(), **OPTIONS, seasonal_lags=[4, 8])
    with pytest.raises(ValueError, match=r"data\.seasonal_lags = \[4\], but the config gives \[4, 8\]"):
        other.load_state_dict(trained.state_dict())
    older = {k: v for k, v in trained.state_dict().items() if k != "seasonal_lags"}  # written before the option
    TimeSeriesDataModule(dataframe=rows_table(), **OPTIONS).load_state_dict(older)


def test_residual_season_is_the_first_long_enough_lag_else_the_season_length() -> None:
    assert fitted(seasonal_lags=[4, 8], season_length=6).residual_season() == 4
    assert fitted(season_length=5).residual_season() == 5
    with pytest.raises(ValueError, match=r"model\.residual: seasonal_naive .* no season is known"):
        fitted(season_length=0).residual_season(required=True)
    with pytest.raises(ValueError, match=r"Add 9 to data\.seasonal_lags"):  # 9 > lookback 5: no history for it
        fitted(season_length=9).residual_season(required=True)


def test_device_windows_serve_the_same_seasonal_base() -> None:
    dm = fitted(season_length=4, window_norm="last", scaler="standard", outliers="zscore")
    dm.serve_seasonal_base()
    dataset = dm.dataset("train")
    loader = window_loader(
        dataset, None, "train", split="train", batch_size=8, num_workers=0, shuffle=False, drop_last=False,
        pin_memory=False,
    )  # fmt: skip
    device_batch = DeviceWindows(loader, "cpu").gather(torch.arange(8))
    batch = dataset.__getitems__(list(range(8)))
    torch.testing.assert_close(device_batch["seasonal_base"], batch["seasonal_base"])
    torch.testing.assert_close(device_batch["y"], batch["y"])

"""Known-future inputs: future rows split off, the (B, L + H, K) block by hand, forecasts from a predict file's future
rows and their errors, checkpoint settings, and the backtest stride."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lightning_lstm.data.calendar import calendar_features
from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.data.frame import SeriesFrame
from lightning_lstm.data.known_future import split_future_rows

LOOKBACK, HORIZON, ROWS = 24, 6, 240
OPTIONS = {
    "time_column": "date",
    "target_columns": ["load"],
    "lookback": LOOKBACK,
    "horizon": HORIZON,
    "val_fraction": 0.1,
    "test_fraction": 0.2,
    "shuffle": False,
}


def load_table(rows: int = ROWS, future: int = 0, spike_at: int | None = None) -> pd.DataFrame:
    """Hourly ``load`` with a daily cycle plus a planned ``event`` (0/1); the last ``future`` rows have no load."""
    t = np.arange(rows + future)
    event = (t % 37 < 3).astype(float)
    load = 100 + 10 * np.sin(2 * np.pi * t / 24) + 15 * event + np.random.default_rng(1).standard_normal(len(t))
    if spike_at is not None:
        event[spike_at] = 1000.0
    table = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=len(t), freq="h"), "load": load, "event": event})
    table.loc[rows:, "load"] = np.nan
    return table


def fitted(path: Path, **options: object) -> TimeSeriesDataModule:
    dm = TimeSeriesDataModule(path=str(path), **{**OPTIONS, **options})
    dm.setup("fit")
    return dm


def forecaster(trained: TimeSeriesDataModule, path: Path, **options: object) -> TimeSeriesDataModule:
    """A predict-time data module on ``path`` with the statistics of ``trained`` (as a checkpoint restores them)."""
    dm = TimeSeriesDataModule(path=str(path), **{**OPTIONS, **options})
    dm.load_state_dict(trained.state_dict())
    dm.setup("predict")
    return dm


def whole(dataset) -> dict:
    return dataset.__getitems__(list(range(len(dataset))))


def test_trailing_rows_without_a_target_become_future_rows() -> None:
    nan = np.nan
    values = np.array([[1, 0.1], [2, 0.2], [nan, 0.3], [nan, 0.4], [5, 1.0], [nan, 2.0], [6, 3.0]], dtype=np.float32)
    frame = SeriesFrame(values, ["y", "k"], ["a", "b"], np.array([0, 4, 7]), np.arange(7) * 10, False, 10, "t")
    trimmed, future = split_future_rows(frame, [0])
    assert trimmed.offsets.tolist() == [0, 2, 5]  # series b's inner gap is a missing value, not a future row
    np.testing.assert_array_equal(trimmed.values[:, 1], np.float32([0.1, 0.2, 1.0, 2.0, 3.0]))
    assert trimmed.times.tolist() == [0, 10, 40, 50, 60]
    assert future.times[0].tolist() == [20, 30] and future.times[1].tolist() == []
    np.testing.assert_array_equal(future.values[0][:, 1], np.float32([0.3, 0.4]))
    same, _ = split_future_rows(trimmed, [0])
    assert same is trimmed  # nothing to split: no copy


def test_known_block_is_scaled_columns_then_calendar_for_lookback_and_horizon(tmp_path: Path) -> None:
    table = load_table()
    table.to_csv(tmp_path / "load.csv", index=False)
    dm = fitted(tmp_path / "load.csv", known_future_columns=["event"], calendar=["hour_of_day"])
    assert dm.num_known_features == 3 and dm.columns == ["load", "event"]
    batch = whole(dm.dataset("train"))
    B = len(batch["window_id"])
    assert batch["x"].shape == (B, LOOKBACK, 1) and batch["known"].shape == (B, LOOKBACK + HORIZON, 3)
    train = table["event"].to_numpy()[: dm.bounds.val_row[0]]  # the training span only
    rows = batch["window_id"].numpy()[:, None] + np.arange(LOOKBACK + HORIZON)  # (B, L + H)
    expected = (table["event"].to_numpy()[rows] - train.mean()) / train.std()
    np.testing.assert_allclose(batch["known"][:, :, 0].numpy(), expected, rtol=1e-5, atol=1e-5)
    times = table["date"].to_numpy(dtype="datetime64[ns]").astype(np.int64)[rows]
    np.testing.assert_allclose(batch["known"][:, :, 1:].numpy(), calendar_features(times, ["hour_of_day"]), atol=1e-6)


def test_inputs_and_targets_are_unchanged_by_known_future_inputs(tmp_path: Path) -> None:
    load_table().to_csv(tmp_path / "load.csv", index=False)
    plain = whole(fitted(tmp_path / "load.csv").dataset("test"))
    options = {"known_future_columns": ["event"], "calendar": ["day_of_week"]}
    known = whole(fitted(tmp_path / "load.csv", **options).dataset("test"))
    assert "known" not in plain
    for key in ("x", "y", "y_raw", "window_id", "seasonal_naive"):
        np.testing.assert_array_equal(plain[key].numpy(), known[key].numpy())


def test_known_column_statistics_come_from_the_training_span(tmp_path: Path) -> None:
    load_table().to_csv(tmp_path / "a.csv", index=False)
    load_table(spike_at=ROWS - 5).to_csv(tmp_path / "b.csv", index=False)  # a huge event value in the test span
    a = fitted(tmp_path / "a.csv", known_future_columns=["event"])
    b = fitted(tmp_path / "b.csv", known_future_columns=["event"])
    np.testing.assert_array_equal(a.stats.center, b.stats.center)
    np.testing.assert_array_equal(a.stats.scale, b.stats.scale)


def test_forecast_reads_the_horizon_from_the_future_rows(tmp_path: Path) -> None:
    load_table().to_csv(tmp_path / "train.csv", index=False)
    table = load_table(future=HORIZON + 2)  # more future rows than the horizon: the first H are read
    table.to_csv(tmp_path / "predict.csv", index=False)
    options = {"known_future_columns": ["event"], "calendar": ["hour_of_day"]}
    trained = fitted(tmp_path / "train.csv", **options)
    dm = forecaster(trained, tmp_path / "predict.csv", **options)
    batch = whole(dm.dataset("forecast"))
    assert batch["window_id"].tolist() == [ROWS - LOOKBACK]  # the inputs end at the last target value
    center, scale = trained.stats.center[0, 1], trained.stats.scale[0, 1]
    event = table["event"].to_numpy()[ROWS - LOOKBACK : ROWS + HORIZON]
    np.testing.assert_allclose(batch["known"][0, :, 0].numpy(), (event - center) / scale, rtol=1e-5, atol=1e-5)
    times = table["date"].to_numpy(dtype="datetime64[ns]").astype(np.int64)[ROWS - LOOKBACK : ROWS + HORIZON]
    np.testing.assert_allclose(batch["known"][0, :, 1:].numpy(), calendar_features(times, ["hour_of_day"]), atol=1e-6)
    future_times = dm.target_times(batch["window_id"].numpy(), forecast=True)[0]
    assert future_times.tolist() == times[LOOKBACK:].tolist()  # the writer's timestamps are those of the future rows


def test_calendar_alone_needs_no_future_rows(tmp_path: Path) -> None:
    load_table().to_csv(tmp_path / "train.csv", index=False)
    trained = fitted(tmp_path / "train.csv", calendar=["day_of_week"])
    batch = whole(forecaster(trained, tmp_path / "train.csv", calendar=["day_of_week"]).dataset("forecast"))
    last = pd.Timestamp("2024-01-01") + pd.Timedelta(hours=ROWS - 1)
    future = pd.date_range(last + pd.Timedelta(hours=1), periods=HORIZON, freq="h")
    expected = calendar_features(future.to_numpy(dtype="datetime64[ns]").astype(np.int64), ["day_of_week"])
    np.testing.assert_allclose(batch["known"][0, LOOKBACK:].numpy(), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.iloc[: ROWS + 2], "need one future row per forecast step .* found 2 such rows"),
        (lambda t: t.drop(index=ROWS), "found 5 such rows starting 2024-01-11 01:00"),  # a step missing: off the grid
        (lambda t: t.assign(event=t["event"].where(t.index != ROWS + 3)), "'event' is empty in the future rows"),
    ],
)
def test_forecast_without_the_future_values_is_a_clear_error(tmp_path: Path, edit, message: str) -> None:
    load_table().to_csv(tmp_path / "train.csv", index=False)
    edit(load_table(future=HORIZON)).to_csv(tmp_path / "predict.csv", index=False)
    trained = fitted(tmp_path / "train.csv", known_future_columns=["event"])
    dm = forecaster(trained, tmp_path / "predict.csv", known_future_columns=["event"])
    with pytest.raises(ValueError, match=message):
        dm.dataset("forecast")


def test_future_rows_stay_out_of_training_and_filling(tmp_path: Path) -> None:
    load_table(future=HORIZON).to_csv(tmp_path / "with_future.csv", index=False)
    load_table().to_csv(tmp_path / "plain.csv", index=False)
    with_future = fitted(tmp_path / "with_future.csv", known_future_columns=["event"])
    plain = fitted(tmp_path / "plain.csv", known_future_columns=["event"])
    assert with_future.frame.values.shape == plain.frame.values.shape == (ROWS, 2)
    np.testing.assert_array_equal(with_future.frame.values, plain.frame.values)  # no future target filled in
    np.testing.assert_array_equal(with_future.stats.center, plain.stats.center)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"known_future_columns": ["load"]}, "'load' is a target"),
        ({"known_future_columns": ["event"], "feature_columns": ["load", "event"]}, "also in data.feature_columns"),
        ({"known_future_columns": ["event", "event"]}, "lists a column twice"),
        ({"calendar": ["weekday"]}, "data.calendar"),
        ({"backtest_stride": 0}, "data.backtest_stride must be an integer >= 1, got 0"),
    ],
)
def test_bad_known_future_options_name_the_key(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TimeSeriesDataModule(**{**OPTIONS, **options})


def test_calendar_needs_datetimes(tmp_path: Path) -> None:
    load_table().assign(date=np.arange(ROWS)).to_csv(tmp_path / "steps.csv", index=False)
    with pytest.raises(ValueError, match="data.calendar = \\['hour_of_day'\\] needs datetime timestamps"):
        fitted(tmp_path / "steps.csv", calendar=["hour_of_day"]).dataset("train")


def test_checkpoint_records_the_known_future_options(tmp_path: Path) -> None:
    load_table().to_csv(tmp_path / "load.csv", index=False)
    trained = fitted(tmp_path / "load.csv", calendar=["hour_of_day"])
    assert trained.state_dict()["calendar"] == ["hour_of_day"]
    with pytest.raises(ValueError, match=r"trained with data.calendar = \['hour_of_day'\], but the config gives \[\]"):
        TimeSeriesDataModule(path=str(tmp_path / "load.csv"), **OPTIONS).load_state_dict(trained.state_dict())
    older = fitted(tmp_path / "load.csv").state_dict()
    del older["calendar"], older["known_future_columns"]
    TimeSeriesDataModule(path=str(tmp_path / "load.csv"), **OPTIONS).load_state_dict(older)  # written before the keys


def test_backtest_stride_sets_forecast_origins_every_k_steps(tmp_path: Path) -> None:
    load_table().to_csv(tmp_path / "load.csv", index=False)
    every = fitted(tmp_path / "load.csv", predict_mode="backtest")
    strided = fitted(tmp_path / "load.csv", predict_mode="backtest", backtest_stride=HORIZON)
    every_index, strided_index = every.predict_dataloader().dataset.index, strided.predict_dataloader().dataset.index
    all_ids = every_index.starts(np.arange(len(every_index)))[0]
    ids = strided_index.starts(np.arange(len(strided_index)))[0]
    assert ids.tolist() == all_ids[::HORIZON].tolist()  # origins every H steps from the first test window
    assert len(ids) == (len(all_ids) - 1) // HORIZON + 1
    assert len(strided.dataset("test")) == len(all_ids)  # trainer.test still scores every window

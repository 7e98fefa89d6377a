"""Panel (long) files: windows never cross series, every series split by the same timestamps, statistics per series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.data.reading import read_frame

VAL_START, TEST_START = "2020-02-20", "2020-03-01"


def panel_table() -> pd.DataFrame:
    """Series ``a`` 2020-01-01.. (70 days), ``b`` 2020-01-21.. (60 days), levels far apart; rows shuffled."""
    rng = np.random.default_rng(2)
    parts = []
    for name, start, days, level in (("a", "2020-01-01", 70, 100.0), ("b", "2020-01-21", 60, -50.0)):
        t = np.arange(days)
        parts.append(
            pd.DataFrame(
                {
                    "id": name,
                    "date": pd.date_range(start, periods=days, freq="D"),
                    "y": level + 0.5 * t + rng.standard_normal(days),
                    "x": level / 10 + rng.standard_normal(days),
                }
            )
        )
    return pd.concat(parts).sample(frac=1.0, random_state=0)


def panel_module(path: Path, **options) -> TimeSeriesDataModule:
    options = {
        "time_column": "date",
        "series_column": "id",
        "target_columns": ["y"],
        "feature_columns": ["y", "x"],
        "lookback": 7,
        "horizon": 3,
        "val_start": VAL_START,
        "test_start": TEST_START,
        "window_norm": "none",
        "shuffle": False,
        **options,
    }
    dm = TimeSeriesDataModule(path=str(path), **options)
    dm.setup("fit")
    return dm


@pytest.fixture
def panel_csv(tmp_path: Path) -> Path:
    path = tmp_path / "panel.csv"
    panel_table().to_csv(path, index=False)
    return path


def test_windows_never_cross_series(panel_csv: Path) -> None:
    dm = panel_module(panel_csv, stride=2)
    frame = dm.frame
    assert frame.series_names == ["a", "b"] and frame.offsets.tolist() == [0, 70, 130]
    width = 7 + 3
    for split in ("train", "val", "test"):
        dataset = dm.dataset(split)
        batch = dataset.__getitems__(list(range(len(dataset))))
        starts = batch["window_id"].numpy()
        first, last = frame.series_of(starts), frame.series_of(starts + width - 1)
        assert np.array_equal(first, last), split
        assert np.array_equal(first, batch["series"].numpy()), split
        assert set(first.tolist()) == {0, 1}, split  # both series have windows in every split


def test_every_series_is_split_by_the_same_timestamps(panel_csv: Path) -> None:
    dm = panel_module(panel_csv)
    frame, val, test = dm.frame, pd.Timestamp(VAL_START).value, pd.Timestamp(TEST_START).value
    for s in range(2):
        a, b = frame.offsets[s], frame.offsets[s + 1]
        v, t = dm.bounds.val_row[s], dm.bounds.test_row[s]
        assert a < v < t < b
        assert frame.times[v - 1] < val <= frame.times[v] and frame.times[t - 1] < test <= frame.times[t]
    val_index, train_index = dm.window_index("val"), dm.window_index("train")
    targets = dm.target_times(val_index.starts(np.arange(len(val_index)))[0], forecast=False)  # (windows, H) int64
    assert targets.min() >= val and targets.max() < test
    assert dm.target_times(train_index.starts(np.arange(len(train_index)))[0], forecast=False).max() < val


def test_statistics_are_fitted_per_series_on_its_training_rows(panel_csv: Path) -> None:
    dm = panel_module(panel_csv, scaler="standard")
    for s in range(2):
        train = dm.frame.values[dm.frame.offsets[s] : dm.bounds.val_row[s]].astype(np.float64)
        np.testing.assert_allclose(dm.stats.center[s], train.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(dm.stats.scale[s], train.std(axis=0), rtol=1e-12)
    assert dm.stats.center[0, 0] > 100 > 0 > -50 > dm.stats.center[1, 0] - 10  # two very different levels
    batch = dm.dataset("train").__getitems__(list(range(len(dm.dataset("train")))))
    for s in range(2):  # each series is scaled with its own statistics: its training targets are centred on 0
        assert abs(float(batch["y"][batch["series"] == s].mean())) < 0.5


def test_a_timestamp_repeated_within_a_series_is_an_error_naming_the_series(tmp_path: Path) -> None:
    table = panel_table()
    repeat = table[(table["id"] == "b") & (table["date"] == "2020-02-02")]
    path = tmp_path / "repeated.csv"
    pd.concat([table, repeat]).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"repeated\.csv.*1 timestamp.*'date'.*\['b: 2020-02-02 00:00:00'\]"):
        read_frame(path, ["y"], "date", "id")
    frame = read_frame(path, ["y"], "date", "id", duplicate_timestamps="last")
    assert frame.offsets.tolist() == [0, 70, 130]


def test_panel_without_time_column_counts_steps_per_series(tmp_path: Path) -> None:
    path = tmp_path / "steps.csv"
    pd.DataFrame({"id": ["a", "b", "a", "b", "a"], "y": [1.0, 10.0, 2.0, 20.0, 3.0]}).to_csv(path, index=False)
    frame = read_frame(path, ["y"], None, "id")
    assert frame.times.tolist() == [0, 1, 2, 0, 1]  # the row order within each series
    assert frame.values[:, 0].tolist() == [1.0, 2.0, 3.0, 10.0, 20.0]


def test_a_series_without_training_rows_is_an_error(tmp_path: Path) -> None:
    late = pd.DataFrame({"id": "late", "date": pd.date_range("2020-02-22", periods=20, freq="D"), "y": 1.0, "x": 2.0})
    path = tmp_path / "late.csv"
    pd.concat([panel_table(), late]).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"late\.csv: column 'y' of series 'late' has no observed value in the"):
        panel_module(path)

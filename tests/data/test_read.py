"""Real files and formats: bundled CO2 series, glucose excerpt, Parquet, memory-mapped ``.npy`` and its memory."""

from __future__ import annotations

import itertools
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.data.frame import SeriesFrame
from lightning_lstm.data.missing import handle_missing
from lightning_lstm.data.reading import bundled_series_path, read_frame
from lightning_lstm.data.splits import span_rows, split_boundaries
from lightning_lstm.data.statistics import FittedStatistics
from lightning_lstm.data.timeline import infer_season_length
from lightning_lstm.model.regressor import LSTMRegressor
from tests.helpers import GLUCOSE_EXCERPT

WEEK_NS = 7 * 24 * 3600 * 10**9
FIVE_MIN_NS = 5 * 60 * 10**9


def test_bundled_co2_series_has_59_gaps_that_each_policy_handles() -> None:
    frame = read_frame(bundled_series_path(), ["co2"], "date")
    assert frame.values.shape == (2284, 1) and int(np.isnan(frame.values).sum()) == 59
    assert frame.time_step == WEEK_NS and infer_season_length(frame) == 52
    with pytest.raises(ValueError, match=r"co2_weekly_maunaloa\.csv: .*'co2': 59 \(first at \['1958-05-10"):
        TimeSeriesDataModule(missing="error").setup("fit")
    dm = TimeSeriesDataModule(missing="interpolate")  # the default config's data
    dm.setup("fit")
    assert dm.gaps.per_column == {"co2": 59}
    assert dm.frame.values[6, 0] == pytest.approx((frame.values[5, 0] + frame.values[7, 0]) / 2)  # 1958-05-10
    # Runs of 1-3 weeks are interpolated (24 values); runs of 4, 5, 8 and 18 weeks (35 values) stay missing.
    assert int(np.isnan(dm.frame.values).sum()) == 35 == int(dm.gaps.length[~dm.gaps.filled].sum())
    assert sorted(dm.gaps.length[~dm.gaps.filled].tolist()) == [4, 5, 8, 18]
    drop = TimeSeriesDataModule(missing="drop")
    drop.setup("fit")
    batch = next(iter(drop.train_dataloader()))
    assert torch.isfinite(batch["x"]).all() and torch.isfinite(batch["y"]).all()
    assert len(drop.window_index("train")) < len(dm.window_index("train"))


def glucose_module(**options) -> TimeSeriesDataModule:
    options = {
        "path": str(GLUCOSE_EXCERPT),
        "time_column": "datetime",
        "target_columns": ["glucose"],
        "feature_columns": ["glucose", "isig"],
        "lookback": 24,
        "horizon": 6,
        "window_norm": "none",
        **options,
    }
    dm = TimeSeriesDataModule(**options)
    dm.setup("fit")
    return dm


def test_glucose_repeated_timestamp_is_an_error_by_default() -> None:
    with pytest.raises(ValueError, match=r"cgm_glucose_excerpt\.csv: 2 rows share 1 timestamp.*2010-05-20 03:21:00"):
        glucose_module()
    with pytest.warns(UserWarning, match="steps are longer than 1.5x the median step"):
        glucose_module(duplicate_timestamps="mean")  # irregular steps used as they are, with a warning


def test_glucose_resampled_with_drop_trains_on_windows_that_never_span_a_gap() -> None:
    dm = glucose_module(duplicate_timestamps="mean", frequency="5min", missing="drop")
    frame = dm.frame
    assert frame.time_step == FIVE_MIN_NS and np.all(np.diff(frame.times) == FIVE_MIN_NS)
    merged = np.searchsorted(frame.times, pd.Timestamp("2010-05-20 03:20").value)
    assert frame.values[merged].tolist() == pytest.approx([123.0, 16.04])  # mean of the repeated 03:21 readings
    assert dm.gaps.per_column["glucose"] > 100  # empty 5-minute bins of the sensor's pauses
    width = 24 + 6
    for split in ("train", "val", "test"):
        index = dm.window_index(split)
        starts, _ = index.starts(np.arange(len(index)))
        rows = starts[:, None] + np.arange(width)  # (windows, L + H)
        assert np.isfinite(frame.values[rows]).all(), split
        assert np.all(np.diff(frame.times[rows], axis=1) == FIVE_MIN_NS), split
    torch.manual_seed(0)
    net = LSTMRegressor(input_size=2, num_targets=1, horizon=6, hidden_size=4, num_layers=1)
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 4-unit LSTM: more threads only contend on a shared CPU
    try:
        for batch in itertools.islice(iter(dm.train_dataloader()), 2):
            loss = torch.nn.functional.mse_loss(net(batch["x"]), batch["y"])  # (B, L, 2) -> (B, 6, 1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            assert torch.isfinite(loss) and all(torch.isfinite(p).all() for p in net.parameters())
    finally:
        torch.set_num_threads(threads)


def test_parquet_reads_like_csv(tmp_path: Path, sine_csv: Path) -> None:
    table = pd.read_csv(sine_csv, parse_dates=["date"])
    table.to_parquet(tmp_path / "sine.parquet")
    from_csv = read_frame(sine_csv, ["value"], "date")
    from_parquet = read_frame(tmp_path / "sine.parquet", ["value"], "date")
    np.testing.assert_array_equal(from_parquet.values, from_csv.values)
    np.testing.assert_array_equal(from_parquet.times, from_csv.times)
    dm = TimeSeriesDataModule(path=str(tmp_path / "sine.parquet"), target_columns=["value"], lookback=14, horizon=7)
    dm.setup("fit")
    assert next(iter(dm.train_dataloader()))["x"].shape == (64, 14, 1)


def test_gzip_csv_reads_like_csv(tmp_path: Path, sine_csv: Path) -> None:
    packed = tmp_path / "sine.csv.gz"
    pd.read_csv(sine_csv).to_csv(packed, index=False)  # gzip, from the name
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    from_csv, from_gzip = read_frame(sine_csv, ["value"], "date"), read_frame(packed, ["value"], "date")
    np.testing.assert_array_equal(from_gzip.values, from_csv.values)
    np.testing.assert_array_equal(from_gzip.times, from_csv.times)
    (tmp_path / "sine.json.gz").write_bytes(packed.read_bytes())
    with pytest.raises(ValueError, match=r"has suffix '.gz'; use .csv \(or .csv.gz\)"):
        read_frame(tmp_path / "sine.json.gz", ["value"], "date")


def write_npy(path: Path, rows: int, columns: int, dtype=np.float32) -> np.ndarray:
    values = np.random.default_rng(5).standard_normal((rows, columns)).astype(dtype)
    np.save(path, values)
    return values


def test_npy_of_exactly_the_chosen_float32_columns_stays_memory_mapped(tmp_path: Path) -> None:
    values = write_npy(tmp_path / "a.npy", 2000, 3)
    frame = read_frame(tmp_path / "a.npy", ["0", "1", "2"], None)
    assert isinstance(frame.values, np.memmap) and not frame.values.flags.writeable
    assert Path(frame.values.filename) == (tmp_path / "a.npy").resolve()
    np.testing.assert_array_equal(frame.values, values)
    dm = TimeSeriesDataModule(
        path=str(tmp_path / "a.npy"),
        time_column=None,
        target_columns=["0"],
        feature_columns=["0", "1", "2"],
        lookback=20,
        horizon=5,
    )
    dm.setup("fit")
    assert isinstance(dm.frame.values, np.memmap) and dm.dataset("train").values is dm.frame.values
    # Other dtypes or column choices are converted once to float32 in memory.
    subset = read_frame(tmp_path / "a.npy", ["2", "0"], None)
    assert not isinstance(subset.values, np.memmap) and subset.values.dtype == np.float32
    np.testing.assert_array_equal(subset.values, values[:, [2, 0]])
    wide = write_npy(tmp_path / "f64.npy", 100, 2, np.float64)
    np.testing.assert_array_equal(read_frame(tmp_path / "f64.npy", ["0", "1"], None).values, wide.astype(np.float32))


def peak_bytes(run) -> int:
    """Peak of the memory traced while ``run()`` runs (numpy reports its arrays to tracemalloc)."""
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_fitting_and_counting_a_memory_mapped_file_copy_one_column_at_most(tmp_path: Path) -> None:
    rows, columns = 1_000_000, 8
    write_npy(tmp_path / "big.npy", rows, columns)
    raw = rows * columns * 4
    names = [str(c) for c in range(columns)]
    frame: SeriesFrame = read_frame(tmp_path / "big.npy", names, None)
    assert peak_bytes(lambda: handle_missing(frame, "interpolate")) < 0.1 * raw  # chunked: no (N, C) temporary
    bounds = split_boundaries(frame, 0.15, 0.15, None, None)
    train_column = (bounds.val_row[0] - 0) * 4  # one float32 column of the training span
    fit = lambda: FittedStatistics.fit(frame, span_rows(frame, bounds, "train"), "robust", "mad", (0.01, 0.99), None)  # noqa: E731
    assert peak_bytes(fit) < 2.5 * train_column < 0.25 * raw
    dm = TimeSeriesDataModule(
        path=str(tmp_path / "big.npy"),
        time_column=None,
        target_columns=["0"],
        feature_columns=names,
        lookback=168,
        horizon=24,
        scaler="standard",
        outliers="quantile",
    )
    assert peak_bytes(lambda: (dm.setup("fit"), [dm.dataset(s) for s in ("train", "val", "test")])) < 0.25 * raw

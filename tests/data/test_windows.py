"""Windows by index arithmetic: hand-written expectations on a 10-point series, splits, stride, gaps, O(1) index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.data.dataset import WindowDataset
from lightning_lstm.data.loaders import EpochSampler
from lightning_lstm.data.statistics import FittedStatistics
from lightning_lstm.data.windows import build_window_index, last_windows

TEN = 10.0 * np.arange(10, dtype=np.float32)  # row r holds 10 * r, so every value names its row


def identity_stats(columns: int = 1) -> FittedStatistics:
    shape = (1, columns)
    return FittedStatistics(
        ["series"],
        [str(c) for c in range(columns)],
        np.full(shape, -np.inf),
        np.full(shape, np.inf),
        np.zeros(shape),
        np.ones(shape),
        {},
    )


def ten_point_dataset(lookback: int, horizon: int, stride: int, finite: np.ndarray | None = None) -> WindowDataset:
    index = build_window_index([(0, 10)], np.array([0]), lookback, horizon, stride, finite)
    return WindowDataset(
        TEN[:, None], index, identity_stats(), [0], [0], lookback, horizon, series_starts=np.array([0])
    )


def test_ten_points_lookback_3_horizon_2_stride_2() -> None:
    batch = ten_point_dataset(lookback=3, horizon=2, stride=2).__getitems__([0, 1, 2])
    assert batch["window_id"].tolist() == [0, 2, 4]  # start 6 would need rows 6..10: row 10 does not exist
    assert batch["x"].squeeze(-1).tolist() == [[0, 10, 20], [20, 30, 40], [40, 50, 60]]  # (B, L, F) = (3, 3, 1)
    assert batch["y"].squeeze(-1).tolist() == [[30, 40], [50, 60], [70, 80]]  # (B, H, T) = (3, 2, 1)
    assert batch["y_raw"].squeeze(-1).tolist() == [[30, 40], [50, 60], [70, 80]]
    assert batch["naive"].squeeze(-1).tolist() == [[20, 20], [40, 40], [60, 60]]  # last input, repeated over H


def test_ten_points_stride_1_gives_every_start() -> None:
    dataset = ten_point_dataset(lookback=3, horizon=2, stride=1)
    assert dataset.index.starts(np.arange(len(dataset.index)))[0].tolist() == [0, 1, 2, 3, 4, 5]
    assert dataset[5]["x"].squeeze(-1).tolist() == [50, 60, 70]
    assert dataset[5]["y"].squeeze(-1).tolist() == [80, 90]


def test_dataset_iterates_and_stops_with_index_error() -> None:
    dataset = ten_point_dataset(lookback=3, horizon=2, stride=2)
    assert [int(item["window_id"]) for item in dataset] == [0, 2, 4]  # the sequence protocol needs IndexError
    with pytest.raises(IndexError):
        dataset[3]


def test_drop_skips_windows_touching_a_gap_and_keeps_the_stride_grid() -> None:
    finite = np.ones(10, dtype=bool)
    finite[4] = False  # row 4 is missing
    index = ten_point_dataset(2, 1, 1, finite).index
    assert index.starts(np.arange(len(index)))[0].tolist() == [0, 1, 5, 6, 7]
    # Stride 2 keeps the grid 0, 2, 4, 6 across the gap: 2 and 4 touch row 4.
    index = ten_point_dataset(2, 1, 2, finite).index
    assert index.starts(np.arange(len(index)))[0].tolist() == [0, 6]


def ten_point_csv(tmp_path: Path) -> Path:
    path = tmp_path / "ten.csv"
    pd.DataFrame({"t": np.arange(10), "v": TEN}).to_csv(path, index=False)
    return path


def test_datamodule_splits_ten_points_by_time(tmp_path: Path) -> None:
    """Train [0, 6), val [6, 8), test [8, 10); stride only on train; inputs may reach back into the earlier split."""
    dm = TimeSeriesDataModule(
        path=str(ten_point_csv(tmp_path)),
        time_column="t",
        target_columns=["v"],
        lookback=2,
        horizon=2,
        stride=2,
        val_start="6",
        test_start="8",
        scaler="none",
        missing="error",
        window_norm="none",
        shuffle=False,
    )
    dm.setup("fit")
    expected = {
        "train": ([0, 2], [[0, 10], [20, 30]], [[20, 30], [40, 50]]),
        "val": ([4], [[40, 50]], [[60, 70]]),
        "test": ([6], [[60, 70]], [[80, 90]]),
    }
    loaders = {"train": dm.train_dataloader(), "val": dm.val_dataloader(), "test": dm.test_dataloader()}
    for split, (ids, x, y) in expected.items():
        (batch,) = list(loaders[split])
        assert batch["window_id"].tolist() == ids, split
        assert batch["x"].squeeze(-1).tolist() == x, split
        assert batch["y"].squeeze(-1).tolist() == y, split
    # Window 5 (targets rows 7 and 8) straddles val/test: it belongs to no split, so no val target is a test value.
    indexes = [dm.window_index(split) for split in expected]
    all_ids = {i for index in indexes for i in index.starts(np.arange(len(index)))[0].tolist()}
    assert 5 not in all_ids
    described = dm.describe_windows(np.array([4]), forecast=False).iloc[0]
    assert (described["input_start"], described["target_start"], described["target_end"]) == ("4", "6", "7")


def test_window_index_memory_does_not_grow_with_windows() -> None:
    for rows in (10**3, 10**6):
        index = build_window_index([(0, rows)], np.array([0]), lookback=168, horizon=24, stride=1)
        assert len(index) == rows - 192 + 1
        assert index.first.size == index.count.size == index.series.size == 1  # one segment, however many windows
    starts, series = index.starts(np.array([0, 1, len(index) - 1]))
    assert starts.tolist() == [0, 1, rows - 192] and series.tolist() == [0, 0, 0]


def test_dataset_reads_the_frame_array_without_copying_it() -> None:
    values = np.zeros((1000, 1), dtype=np.float32)
    index = build_window_index([(0, 1000)], np.array([0]), 10, 2, 1)
    dataset = WindowDataset(values, index, identity_stats(), [0], [0], 10, 2, series_starts=np.array([0]))
    assert dataset.values is values
    owned = [v for v in vars(dataset).values() if isinstance(v, (np.ndarray, torch.Tensor))]
    assert sum(v.nbytes for v in owned if v is not values) < 1000  # O(lookback + horizon + columns), not O(windows)


def test_forecast_window_is_the_last_lookback_rows_unless_they_touch_a_gap() -> None:
    offsets = np.array([0, 10, 13, 30])  # the middle series is shorter than the lookback
    assert last_windows(offsets, lookback=4).first.tolist() == [6, 26]
    finite = np.ones(30, dtype=bool)
    finite[28] = False
    assert last_windows(offsets, lookback=4, finite=finite).first.tolist() == [6]


def test_training_loader_serves_every_window_once_per_epoch(tmp_path: Path) -> None:
    dm = TimeSeriesDataModule(
        path=str(ten_point_csv(tmp_path)),
        time_column="t",
        target_columns=["v"],
        lookback=2,
        horizon=1,
        val_fraction=0.0,
        test_fraction=0.2,
        batch_size=3,
        missing="error",
    )
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert isinstance(loader.sampler, EpochSampler)  # a numpy order, seeded per epoch, resumable
    assert sorted(torch.cat([b["window_id"] for b in loader]).tolist()) == [0, 1, 2, 3, 4, 5]

"""Missing values: ``drop`` never fills and never serves one; ``ffill`` / ``interpolate`` fill and count; ``error``.

Gap lengths (``data.max_gap``), fills that never look into a later split and the ``observed`` mask: test_gaps.py.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lightning_lstm.data import column_stats
from lightning_lstm.data.column_stats import finite_rows, missing_counts
from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.data.frame import SeriesFrame
from lightning_lstm.data.missing import handle_missing

ROWS = 120
GAPS_A = [3, 40, 41, 42, 90]  # rows of column a left empty; column b is inf at row 60
GAP_B = 60


def gappy_csv(tmp_path: Path) -> Path:
    t = np.arange(ROWS, dtype=np.float64)
    table = pd.DataFrame({"date": pd.date_range("2022-03-01", periods=ROWS, freq="D"), "a": t, "b": 2 * t})
    table.loc[GAPS_A, "a"] = np.nan
    table.loc[GAP_B, "b"] = np.inf
    path = tmp_path / "gappy.csv"
    table.to_csv(path, index=False)
    return path


def module(path: Path, missing: str) -> TimeSeriesDataModule:
    dm = TimeSeriesDataModule(
        path=str(path),
        target_columns=["a"],
        feature_columns=["a", "b"],
        lookback=5,
        horizon=2,
        val_fraction=0.2,
        test_fraction=0.2,
        missing=missing,
        window_norm="none",
        shuffle=False,
    )
    dm.setup("fit")
    return dm


def all_windows(dm: TimeSeriesDataModule, split: str) -> dict[str, torch.Tensor]:
    dataset = dm.dataset(split)
    return dataset.__getitems__(list(range(len(dataset))))


def test_drop_never_serves_a_missing_value_and_never_fills(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.INFO):
        dm = module(gappy_csv(tmp_path), "drop")
    assert dm.gaps.per_column == {"a": 5, "b": 1}
    assert np.isnan(dm.frame.values[GAPS_A, 0]).all() and np.isnan(dm.frame.values[GAP_B, 1])  # nothing filled
    bad = set(GAPS_A) | {GAP_B}
    for split in ("train", "val", "test"):
        batch = all_windows(dm, split)
        assert len(batch["x"]) > 0
        for key in ("x", "y", "y_raw"):
            assert torch.isfinite(batch[key]).all(), (split, key)
        for start in batch["window_id"].tolist():
            assert not bad & set(range(start, start + 7)), (split, start)
    full = len(dm.window_index("train", skip_missing=False))
    assert len(dm.window_index("train")) < full
    assert "20 of 66 windows skipped for gaps" in caplog.text and "{'a': 5, 'b': 1}" in caplog.text


@pytest.mark.parametrize("missing", ["ffill", "interpolate"])
def test_filling_fills_every_gap_and_reports_counts(tmp_path: Path, missing: str, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="lightning_lstm.data.missing"):
        dm = module(gappy_csv(tmp_path), missing)
    assert dm.gaps.per_column == {"a": 5, "b": 1}  # runs of 1, 3 and 1 steps in a, 1 in b: none over max_gap = 3
    assert f"{{'a': 5, 'b': 1}} ({missing}): 6 filled in runs of at most data.max_gap = 3 steps" in caplog.text
    assert np.isfinite(dm.frame.values).all()
    a, b = dm.frame.values[:, 0], dm.frame.values[:, 1]
    if missing == "ffill":
        assert a[3] == 2 and a[40:43].tolist() == [39, 39, 39] and a[90] == 89 and b[GAP_B] == 118
    else:  # a line: interpolation recovers it exactly
        assert a[3] == 3 and a[40:43].tolist() == [40, 41, 42] and a[90] == 90 and b[GAP_B] == 120


def frame_of(values: list[list[float]], times: list[int] | None = None) -> SeriesFrame:
    array = np.asarray(values, dtype=np.float32)
    return SeriesFrame(
        array,
        [f"c{i}" for i in range(array.shape[1])],
        ["series"],
        np.array([0, len(array)]),
        None if times is None else np.asarray(times, dtype=np.int64),
        False,
        1,
        "mem",
    )


def test_interpolation_is_linear_in_time_and_holds_the_ends() -> None:
    frame = frame_of([[np.nan], [0.0], [np.nan], [30.0], [np.nan]], times=[0, 1, 2, 4, 9])
    assert handle_missing(frame, "interpolate").per_column == {"c0": 3}
    assert frame.values[:, 0].tolist() == [0.0, 0.0, 10.0, 30.0, 30.0]  # t=2 is a third of the way from t=1 to t=4


def test_ffill_takes_the_first_value_for_a_leading_gap() -> None:
    frame = frame_of([[np.nan, 1.0], [5.0, 2.0], [np.nan, 3.0], [np.inf, 4.0], [7.0, 5.0]])
    handle_missing(frame, "ffill")
    assert frame.values[:, 0].tolist() == [5.0, 5.0, 5.0, 5.0, 7.0]
    assert frame.values[:, 1].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_error_names_the_columns_and_first_timestamps(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as caught:
        module(gappy_csv(tmp_path), "error")
    message = str(caught.value)
    assert "gappy.csv" in message
    assert re.search(r"'a': 5 \(first at \['2022-03-04[^']*', '2022-04-10[^']*', '2022-04-11[^']*'\]\)", message)
    assert re.search(r"'b': 1 \(first at \['2022-04-30[^']*'\]\)", message)
    assert "data.missing" in message


def test_scans_agree_with_numpy_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(column_stats, "CHUNK_ROWS", 4)
    rng = np.random.default_rng(0)
    values = rng.standard_normal((30, 3)).astype(np.float32)
    values[rng.random((30, 3)) < 0.2] = np.nan
    values[7, 2] = -np.inf
    offsets = np.array([0, 11, 30])
    expected = np.stack([(~np.isfinite(values[a:b])).sum(axis=0) for a, b in ((0, 11), (11, 30))])
    np.testing.assert_array_equal(missing_counts(values, offsets), expected)
    np.testing.assert_array_equal(finite_rows(values), np.isfinite(values).all(axis=1))

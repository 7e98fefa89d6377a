"""Each bad input gives a ValueError naming the file and the key, column or value, and saying what would work."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lightning_lstm.data.datamodule import TimeSeriesDataModule


def good_table(rows: int = 100) -> pd.DataFrame:
    t = np.arange(rows)
    return pd.DataFrame(
        {
            "date": pd.date_range("2024-01-01", periods=rows, freq="D").strftime("%Y-%m-%d"),
            "value": np.sin(t / 5.0) + 0.01 * t,
            "label": "ok",
            "const": 4.0,
            "empty": np.nan,
        }
    )


def write(tmp_path: Path, name: str, content: pd.DataFrame | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        content.to_csv(path, index=False)
    return path


def setup(path: Path | str, **options) -> TimeSeriesDataModule:
    options = {"target_columns": ["value"], "lookback": 10, "horizon": 2, "window_norm": "none", **options}
    dm = TimeSeriesDataModule(path=str(path), **options)
    dm.setup("fit")
    return dm


def label_table() -> pd.DataFrame:
    table = good_table()
    table.loc[7, "label"] = "abc"
    table.loc[:, "label"] = table["label"].where(table.index == 7, "1.5")
    return table


def long_gap_table() -> pd.DataFrame:
    table = good_table()
    table.loc[5:70, "value"] = np.nan  # 66 days, over data.max_gap: every training window touches them
    return table


def repeated_table() -> pd.DataFrame:
    table = good_table()
    table.loc[41, "date"] = table.loc[40, "date"]
    return table


# (id, file name, content or None for no file, DataModule options, fragments the message must hold, in order)
FILE_CASES = [
    ("missing file", "nope.csv", None, {}, ["nope.csv", "does not exist", "CSV, Parquet or .npy"]),
    ("empty file", "empty.csv", b"", {}, ["empty.csv", "the file is empty", "header row and data rows"]),
    ("header only", "header.csv", b"date,value\n", {}, ["header.csv", "no data rows"]),
    (
        "unreadable parquet",
        "bad.parquet",
        b"this is not parquet",
        {},
        ["bad.parquet", "could not read the file as Parquet", "valid Parquet file"],
    ),
    ("unreadable npy", "bad.npy", b"\x93NUMPY garbage", {"time_column": None}, ["bad.npy", "not a readable .npy"]),
    ("empty npy", "empty.npy", b"", {"time_column": None}, ["empty.npy", "not a readable .npy"]),
    ("wrong suffix", "data.xlsx", b"x", {}, ["data.xlsx", "'.xlsx'", "use .csv (or .csv.gz), .parquet or .npy"]),
    (
        "unknown target column",
        "t.csv",
        good_table(),
        {"target_columns": ["nope"]},
        [
            "t.csv",
            "'nope' (data.target_columns / data.feature_columns) not found",
            "Available columns: ['date', 'value', 'label', 'const', 'empty']",
        ],
    ),
    (
        "unknown time column",
        "t.csv",
        good_table(),
        {"time_column": "when"},
        ["t.csv", "'when' (data.time_column) not found", "Available columns"],
    ),
    (
        "non-numeric feature",
        "t.csv",
        label_table(),
        {"feature_columns": ["value", "label"]},
        ["t.csv", "column 'label' is not numeric", "['abc']", "data row 7", "Use numeric columns"],
    ),
    (
        "all-missing column",
        "t.csv",
        good_table(),
        {"feature_columns": ["value", "empty"]},
        ["t.csv", "column 'empty' is entirely missing", "Remove it from data.target_columns / data.feature_columns"],
    ),
    (
        "series too short",
        "short.csv",
        good_table(30),
        {"lookback": 52, "horizon": 4},
        [
            "short.csv",
            "the train split has no window",
            "the series has 30 rows",
            "52 + 4 = 56",
            "needs at least 80 rows",
            "Lower data.lookback",
        ],
    ),
    (
        "overlapping splits",
        "t.csv",
        good_table(),
        {"val_start": "2024-03-20", "test_start": "2024-03-01"},
        [
            "validation split starts at 2024-03-20",
            "data.val_start",
            "after the test split at 2024-03-01",
            "data.test_start",
            "overlap",
        ],
    ),
    (
        "empty validation",
        "t.csv",
        good_table(),
        {"val_start": "2024-03-01", "test_start": "2024-03-01"},
        ["t.csv", "the validation split is empty", "data run from 2024-01-01", "to 2024-04-09"],
    ),
    (
        "empty test",
        "t.csv",
        good_table(),
        {"test_start": "2030-01-01"},
        ["t.csv", "the test split is empty", "from 2030-01-01", "data.test_start"],
    ),
    (
        "empty train",
        "t.csv",
        good_table(),
        {"val_start": "2023-01-01", "test_start": "2024-03-01"},
        ["t.csv", "the train split is empty", "before 2023-01-01"],
    ),
    ("not a timestamp", "t.csv", good_table(), {"val_start": "soon"}, ["data.val_start", "'soon'", "not a timestamp"]),
    (
        "repeated timestamps",
        "rep.csv",
        repeated_table(),
        {},
        [
            "rep.csv",
            "2 rows share 1 timestamp(s) in column 'date'",
            "['2024-02-10 00:00:00']",
            "data.duplicate_timestamps",
        ],
    ),
    ("npy with a time column", "a.npy", None, {}, ["a.npy", "data.time_column ('date')", "set both to null"]),
    (
        "every training window on a long gap",
        "gap.csv",
        long_gap_table(),
        {},
        ["gap.csv", "the train split has no window without a gap", "all its 59 windows", "data.max_gap"],
    ),
    (
        "ambiguous boundary beside ISO dates",
        "t.csv",
        good_table(),
        {"val_start": "01/03/2024", "test_start": "2024-03-20"},
        ["data.val_start: '01/03/2024' could be month first or day first", "t.csv", "data.dayfirst: true"],
    ),
    (
        "frequency without datetimes",
        "t.csv",
        good_table().assign(date=np.arange(100)),
        {"frequency": "5min"},
        ["t.csv", "data.frequency = '5min' needs a datetime time column"],
    ),
]


@pytest.mark.parametrize(
    ("name", "content", "options", "fragments"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES]
)
def test_bad_input_message(tmp_path: Path, name: str, content, options: dict, fragments: list[str]) -> None:
    path = tmp_path / name
    if name == "a.npy":
        np.save(path, np.zeros((50, 2), dtype=np.float32))
    elif content is not None:
        write(tmp_path, name, content)
    with pytest.raises(ValueError) as caught:
        setup(path, **options)
    message = str(caught.value)
    positions = [message.find(fragment) for fragment in fragments]
    assert -1 not in positions, f"{fragments[positions.index(-1)]!r} not in: {message}"
    assert positions == sorted(positions), message


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"lookback": 0}, "data.lookback must be an integer >= 1, got 0"),
        ({"horizon": -1}, "data.horizon must be an integer >= 1, got -1"),
        ({"stride": 0}, "data.stride must be an integer >= 1, got 0"),
        ({"lookback": True}, "data.lookback must be an integer >= 1, got True"),
        ({"outlier_quantiles": (0.99, 0.01)}, "outlier_quantiles must satisfy 0 <= low < high <= 1, got [0.99, 0.01]"),
        ({"outlier_quantiles": (0.1, 1.5)}, "data.outlier_quantiles must satisfy 0 <= low < high <= 1"),
        ({"outlier_k": 0.0}, "data.outlier_k must be > 0, got 0.0"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, "leaves nothing for training"),
        ({"max_gap": -1}, "data.max_gap must be an integer >= 0, got -1"),
        ({"max_gap": 1.5}, "data.max_gap must be an integer >= 0, got 1.5"),
    ],
)
def test_bad_option_message(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        TimeSeriesDataModule(**options)


def test_constant_column_under_standard_scaling_warns_and_uses_scale_one(tmp_path: Path) -> None:
    path = write(tmp_path, "const.csv", good_table())
    with pytest.warns(UserWarning, match=r"const\.csv: column 'const' is constant on the training span.*scale 1"):
        dm = setup(path, feature_columns=["value", "const"], scaler="standard")
    assert dm.stats.scale[0, 1] == 1.0 and dm.stats.center[0, 1] == 4.0
    assert dm.dataset("train")[0]["x"][:, 1].eq(0).all()  # shifted to 0, never divided by 0


def test_irregular_steps_warn_and_suggest_a_frequency(tmp_path: Path) -> None:
    table = good_table().drop(index=range(50, 60))  # a 10-day hole in a daily series
    with pytest.warns(UserWarning, match=r"1 steps are longer than 1.5x the median step 1 days.*data.frequency"):
        setup(write(tmp_path, "hole.csv", table))

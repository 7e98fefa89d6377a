"""Messages that fit the data: the irregular-step hint names the data's own step; identical columns are reported."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.data.timeline import frequency_alias


def series(tmp_path: Path, freq: str, hole: bool = True, **columns) -> Path:
    t = np.arange(300)
    table = pd.DataFrame({"date": pd.date_range("2021-01-01", periods=300, freq=freq), "value": 10 + np.sin(t / 5)})
    for name, values in columns.items():
        table[name] = values
    if hole:
        table = table.drop(index=range(100, 110))  # ten missing rows: one long step
    path = tmp_path / f"{freq}.csv"
    table.to_csv(path, index=False)
    return path


def setup(path: Path, **options) -> TimeSeriesDataModule:
    options = {"time_column": "date", "target_columns": ["value"], "lookback": 10, "horizon": 2, **options}
    dm = TimeSeriesDataModule(path=str(path), window_norm="none", **options)
    dm.setup("fit")
    return dm


@pytest.mark.parametrize(("freq", "alias"), [("h", "h"), ("30min", "30min"), ("D", "D"), ("5min", "5min")])
def test_the_irregular_step_warning_suggests_the_datas_own_frequency(tmp_path: Path, freq: str, alias: str):
    with pytest.warns(UserWarning, match=rf"set data.frequency: '{alias}' \(the median step\)"):
        setup(series(tmp_path, freq))


def test_frequency_alias_of_common_steps():
    ns = pd.Timedelta("1h").value
    assert [frequency_alias(n * ns) for n in (1, 6, 24, 168)] == ["h", "6h", "D", "7D"]
    assert frequency_alias(pd.Timedelta("90s").value) == "90s"


def test_identical_feature_columns_are_reported_by_name(tmp_path: Path):
    t = np.arange(300)
    other = np.cos(t / 7)
    path = series(tmp_path, "D", hole=False, other=other, copy=other, unrelated=np.sin(t / 3))
    with pytest.warns(UserWarning, match=r"columns 'other' and 'copy' hold identical values on the training span"):
        setup(path, feature_columns=["value", "other", "copy", "unrelated"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning when the columns differ
        setup(path, feature_columns=["value", "other", "unrelated"])

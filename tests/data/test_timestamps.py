"""Timestamps as users have them: UTC offsets that change at daylight saving, ``Z``, day-first dates, and
``val_start`` / ``test_start`` read exactly like the time column."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lightning_lstm.data.reading import read_frame
from lightning_lstm.data.splits import split_boundaries

HOUR = 3600 * 10**9


def write(tmp_path: Path, name: str, times: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("ts,y\n" + "".join(f"{t},{i}\n" for i, t in enumerate(times)))
    return path


def test_offsets_that_change_at_daylight_saving_are_converted_to_utc(tmp_path: Path, caplog) -> None:
    local = pd.date_range("2021-03-27 22:00", periods=8, freq="h", tz="Europe/Paris")  # +01:00, then +02:00
    path = write(tmp_path, "dst.csv", [t.isoformat() for t in local])
    assert "+01:00" in path.read_text() and "+02:00" in path.read_text()
    with caplog.at_level(logging.INFO):
        frame = read_frame(path, ["y"], "ts")
    assert frame.format_times(frame.times)[:5] == [
        "2021-03-27 21:00:00",
        "2021-03-27 22:00:00",
        "2021-03-27 23:00:00",
        "2021-03-28 00:00:00",
        "2021-03-28 01:00:00",  # 03:00+02:00: the hour 02:00 local never happened, UTC runs on without a gap
    ]
    assert frame.time_step == HOUR and (np.diff(frame.times) == HOUR).all()
    assert f"{path}: time column 'ts' has UTC offsets +01:00, +02:00: converted to UTC" in caplog.text
    bounds = split_boundaries(frame, 0.1, 0.1, "2021-03-28T03:00:00+02:00", None)  # an offset: converted too
    assert frame.format_times([bounds.val_time]) == ["2021-03-28 01:00:00"]
    naive = split_boundaries(frame, 0.1, 0.1, "2021-03-28 01:00", None)  # without an offset: UTC, like the frame
    assert naive.val_time == bounds.val_time


def test_a_z_suffix_is_utc(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.INFO):
        frame = read_frame(write(tmp_path, "z.csv", ["2021-01-01T00:00:00Z", "2021-01-01T01:00:00Z"]), ["y"], "ts")
    assert frame.format_times(frame.times) == ["2021-01-01 00:00:00", "2021-01-01 01:00:00"]
    assert "has UTC offsets Z: converted to UTC" in caplog.text


def day_first_dates(start: str = "2012-03-01", days: int = 60) -> list[str]:
    return [f"{t:%d/%m/%Y}" for t in pd.date_range(start, periods=days, freq="D")]


def test_day_first_dates_through_data_dayfirst_and_boundaries_read_alike(tmp_path: Path, caplog) -> None:
    path = write(tmp_path, "dayfirst.csv", day_first_dates())  # 01/03/2012 ... 29/04/2012
    with pytest.raises(ValueError, match=r"'13/03/2012'.*They look day-first: set data.dayfirst: true"):
        read_frame(path, ["y"], "ts")
    with caplog.at_level(logging.INFO):
        frame = read_frame(path, ["y"], "ts", dayfirst=True)
    assert frame.format_times(frame.times[[0, 12, -1]]) == ["2012-03-01", "2012-03-13", "2012-04-29"]
    assert "read with format '%d/%m/%Y' (day first" in caplog.text
    bounds = split_boundaries(frame, 0.1, 0.1, "01/04/2012", "15/04/2012")
    assert frame.format_times([bounds.val_time, bounds.test_time]) == ["2012-04-01", "2012-04-15"]
    assert int(bounds.val_row[0]) == 31  # March has 31 days: 1 April is row 31, not 4 January (before the data)


def test_a_month_first_column_reads_its_boundaries_month_first(tmp_path: Path) -> None:
    dates = [f"{t:%m/%d/%Y}" for t in pd.date_range("2012-01-01", periods=120, freq="D")]
    frame = read_frame(write(tmp_path, "us.csv", dates), ["y"], "ts")
    bounds = split_boundaries(frame, 0.1, 0.1, "01/04/2012", None)
    assert frame.format_times([bounds.val_time]) == ["2012-01-04"]


def test_an_ambiguous_boundary_on_an_iso_column_is_refused(tmp_path: Path) -> None:
    iso = [f"{t:%Y-%m-%d}" for t in pd.date_range("2012-01-01", periods=120, freq="D")]
    frame = read_frame(write(tmp_path, "iso.csv", iso), ["y"], "ts")
    with pytest.raises(ValueError, match=r"data.val_start: '01/04/2012' could be month first or day first"):
        split_boundaries(frame, 0.1, 0.1, "01/04/2012", None)
    dayfirst = read_frame(write(tmp_path, "iso.csv", iso), ["y"], "ts", dayfirst=True)
    bounds = split_boundaries(dayfirst, 0.1, 0.1, "01/04/2012", None)  # ISO dates stay ISO; the boundary day first
    assert dayfirst.format_times([dayfirst.times[0], bounds.val_time]) == ["2012-01-01", "2012-04-01"]
    assert split_boundaries(frame, 0.1, 0.1, "13/04/2012", None).val_time == bounds.val_time + 12 * 24 * HOUR


def test_mixed_offsets_and_none_are_refused_by_row(tmp_path: Path) -> None:
    times = ["2021-01-01T00:00:00+01:00", "2021-01-01T01:00:00", "2021-01-01T02:00:00+02:00"]
    with pytest.raises(ValueError, match=r"mix\.csv: time column 'ts' mixes timestamps with a UTC offset and without"):
        read_frame(write(tmp_path, "mix.csv", times), ["y"], "ts")


def test_a_boundary_with_an_offset_on_local_times_is_refused(tmp_path: Path) -> None:
    frame = read_frame(write(tmp_path, "local.csv", ["2021-01-01 00:00", "2021-01-02 00:00"]), ["y"], "ts")
    with pytest.raises(ValueError, match=r"data.test_start: '2021-01-02T00:00\+01:00' has a UTC offset"):
        split_boundaries(frame, 0.1, 0.1, None, "2021-01-02T00:00+01:00")

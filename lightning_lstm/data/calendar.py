"""Calendar features of timestamps, as sin/cos pairs: known for every future step, so the model reads them for the
lookback and the horizon (``data.calendar: [hour_of_day, day_of_week]``).

Each feature is a phase in ``[0, 1)`` of its cycle, fed as ``sin(2 pi phase), cos(2 pi phase)``: midnight and 23:55
lie close, as do Sunday and Monday. Timestamps are the frame's int64 nanoseconds (UTC when the file had time zones).

* ``hour_of_day``: the time of day (minutes and seconds included, so 5-minute data gets 288 distinct phases);
* ``day_of_week``: Monday 00:00 is phase 0, the time of day included;
* ``day_of_year``: the elapsed share of the calendar year (leap years included).
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

CalendarFeature = Literal["hour_of_day", "day_of_week", "day_of_year"]
CALENDAR_FEATURES = get_args(CalendarFeature)

_DAY = 24 * 3600 * 10**9
_WEEK = 7 * _DAY
_MONDAY = 4 * _DAY  # 1970-01-01 was a Thursday: Monday 1970-01-05 starts the weekly phase


def check_calendar(calendar: list[str]) -> None:
    """A ValueError naming ``data.calendar`` for an unknown or repeated feature."""
    unknown = [name for name in calendar if name not in CALENDAR_FEATURES]
    if unknown:
        raise ValueError(f"data.calendar: {unknown} are not calendar features; choose from {list(CALENDAR_FEATURES)}")
    if len(set(calendar)) != len(calendar):
        raise ValueError(f"data.calendar lists a feature twice: {calendar}")


def calendar_phase(times: np.ndarray, feature: CalendarFeature) -> np.ndarray:
    """Phase in ``[0, 1)`` of ``feature`` at int64-nanosecond ``times`` (any shape) -> float64 of that shape."""
    times = np.asarray(times, dtype=np.int64)
    if feature == "hour_of_day":
        return np.mod(times, _DAY) / _DAY
    if feature == "day_of_week":
        return np.mod(times - _MONDAY, _WEEK) / _WEEK
    stamps = times.astype("datetime64[ns]")
    year = stamps.astype("datetime64[Y]")
    start = year.astype("datetime64[ns]").astype(np.int64)
    end = (year + 1).astype("datetime64[ns]").astype(np.int64)
    return (times - start) / (end - start)


def calendar_features(times: np.ndarray, calendar: list[CalendarFeature]) -> np.ndarray:
    """``(..., 2 * len(calendar))`` float32 sin/cos pairs, in the order of ``calendar``, of int64-ns ``times`` (...)."""
    times = np.asarray(times, dtype=np.int64)
    out = np.empty((*times.shape, 2 * len(calendar)), dtype=np.float32)
    for i, feature in enumerate(calendar):
        angle = 2 * np.pi * calendar_phase(times, feature)
        out[..., 2 * i] = np.sin(angle)
        out[..., 2 * i + 1] = np.cos(angle)
    return out

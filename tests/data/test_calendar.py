"""Calendar features: phases of known timestamps written by hand, sin/cos pairs, and option errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lightning_lstm.data.calendar import calendar_features, calendar_phase, check_calendar


def ns(*stamps: str) -> np.ndarray:
    return pd.DatetimeIndex(stamps).to_numpy(dtype="datetime64[ns]").astype(np.int64)


def test_phases_of_known_timestamps() -> None:
    # 2000-06-05 was a Monday; 2000 is a leap year (366 days), and 2000-07-02 starts its day 183 (0-based).
    times = ns("2000-06-05 00:00", "2000-06-05 12:00", "2000-06-11 18:00", "2000-01-01 00:00", "2000-07-02 06:00")
    np.testing.assert_allclose(calendar_phase(times, "hour_of_day"), [0, 0.5, 0.75, 0, 0.25])
    monday_hours = [0, 12, 6 * 24 + 18, 5 * 24, 6 * 24 + 6]  # hours since the Monday before each timestamp
    np.testing.assert_allclose(calendar_phase(times, "day_of_week"), np.array(monday_hours) / 168)
    np.testing.assert_allclose(calendar_phase(times, "day_of_year")[[3, 4]], [0, (183 + 0.25) / 366])


def test_five_minute_steps_have_distinct_phases_and_wrap_at_midnight() -> None:
    times = ns(*pd.date_range("2010-05-20 23:50", periods=4, freq="5min").astype(str))
    np.testing.assert_allclose(calendar_phase(times, "hour_of_day"), [1430 / 1440, 1435 / 1440, 0, 5 / 1440])


def test_features_are_sin_cos_pairs_in_config_order() -> None:
    times = ns("2000-06-05 06:00", "2000-06-08 00:00").reshape(1, 2)  # (B, W) = (1, 2)
    features = calendar_features(times, ["day_of_week", "hour_of_day"])
    assert features.shape == (1, 2, 4) and features.dtype == np.float32
    week = 2 * np.pi * np.array([6 / 168, 3 / 7])
    day = 2 * np.pi * np.array([0.25, 0.0])
    expected = np.stack([np.sin(week), np.cos(week), np.sin(day), np.cos(day)], axis=-1)[None]
    np.testing.assert_allclose(features, expected, atol=1e-6)


@pytest.mark.parametrize(
    ("calendar", "message"),
    [(["hour"], "data.calendar: ['hour'] are not calendar features"), (["day_of_week"] * 2, "lists a feature twice")],
)
def test_bad_calendar_options_name_the_key(calendar: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_calendar(calendar)

"""Season length for the seasonal-naive baseline, inferred from the series' time step."""

from __future__ import annotations

from lightning_lstm.data.frame import SeriesFrame

_MINUTE = 60 * 10**9
_HOUR, _DAY = 60 * _MINUTE, 24 * 60 * _MINUTE

# (step in ns, steps per season): the common calendar cycles of each sampling rate.
_SEASONS = [
    (_MINUTE, 60 * 24),
    (5 * _MINUTE, 12 * 24),
    (10 * _MINUTE, 6 * 24),
    (15 * _MINUTE, 4 * 24),
    (30 * _MINUTE, 2 * 24),
    (_HOUR, 24),
    (_DAY, 7),
    (7 * _DAY, 52),
]


def infer_season_length(frame: SeriesFrame) -> int | None:
    """Daily cycle for sub-daily data, weekly for daily, yearly for weekly/monthly/quarterly; ``None`` if unknown."""
    if not frame.is_datetime or not frame.time_step:
        return None
    step = frame.time_step
    for known, season in _SEASONS:
        if abs(step - known) <= 0.02 * known:
            return season
    if 28 * _DAY <= step <= 31 * _DAY:
        return 12
    if 89 * _DAY <= step <= 92 * _DAY:
        return 4
    return None

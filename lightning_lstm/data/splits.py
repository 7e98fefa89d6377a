"""Chronological train/val/test boundaries, the same timestamps for every series of a panel file."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lightning_lstm.data.frame import SeriesFrame


@dataclass
class SplitBoundaries:
    """Per series, the first row of the validation span and of the test span (global row positions).

    Series ``s`` spans rows ``[offsets[s], val_row[s])`` for training, ``[val_row[s], test_row[s])`` for validation and
    ``[test_row[s], offsets[s + 1])`` for testing.
    """

    val_row: np.ndarray
    test_row: np.ndarray
    val_time: int
    test_time: int


def _to_time(value: str | int, frame: SeriesFrame, key: str) -> int:
    if frame.is_datetime:
        try:
            return int(pd.Timestamp(value).value)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{key}: {value!r} is not a timestamp") from err
    try:
        return int(value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{key}: {value!r} must be an integer step, since {frame.source} has no datetime column") from err


def _time_at_fraction(frame: SeriesFrame, fraction: float) -> int:
    """The timestamp that leaves ``fraction`` of the distinct timestamps at or after it."""
    if frame.times is None:
        n = frame.values.shape[0]
        return int(n - round(n * fraction))
    distinct = np.unique(frame.times)
    position = min(len(distinct) - 1, max(0, len(distinct) - int(round(len(distinct) * fraction))))
    return int(distinct[position]) if fraction > 0 else int(distinct[-1]) + 1


def split_boundaries(
    frame: SeriesFrame,
    val_fraction: float,
    test_fraction: float,
    val_start: str | int | None,
    test_start: str | int | None,
) -> SplitBoundaries:
    """Boundaries from timestamps (``val_start``/``test_start``) or fractions of the timeline."""
    test_time = (
        _to_time(test_start, frame, "data.test_start")
        if test_start is not None
        else _time_at_fraction(frame, test_fraction)
    )
    val_time = (
        _to_time(val_start, frame, "data.val_start")
        if val_start is not None
        else _time_at_fraction(frame, val_fraction + test_fraction)
    )
    if val_start is None and val_fraction == 0:
        val_time = test_time
    if val_time > test_time:
        raise ValueError(
            f"data.val_start ({frame.format_times([val_time])[0]}) is after data.test_start "
            f"({frame.format_times([test_time])[0]}): the splits overlap; validation must come before test"
        )
    val_row = np.empty(frame.num_series, dtype=np.int64)
    test_row = np.empty(frame.num_series, dtype=np.int64)
    for s in range(frame.num_series):
        a, b = int(frame.offsets[s]), int(frame.offsets[s + 1])
        times = np.arange(a, b) if frame.times is None else frame.times[a:b]
        val_row[s] = a + np.searchsorted(times, val_time, side="left")
        test_row[s] = a + np.searchsorted(times, test_time, side="left")
    return SplitBoundaries(val_row=val_row, test_row=test_row, val_time=val_time, test_time=test_time)


def span_rows(frame: SeriesFrame, bounds: SplitBoundaries, split: str) -> list[tuple[int, int]]:
    """Per series, the ``[start, stop)`` rows whose values belong to ``split`` (targets live there)."""
    spans = []
    for s in range(frame.num_series):
        a, b = int(frame.offsets[s]), int(frame.offsets[s + 1])
        spans.append(
            {
                "train": (a, int(bounds.val_row[s])),
                "val": (int(bounds.val_row[s]), int(bounds.test_row[s])),
                "test": (int(bounds.test_row[s]), b),
            }[split]
        )
    return spans

"""Chronological train/val/test boundaries, the same timestamps for every series of a panel file, and the row spans
they cut each series into (:func:`split_spans`), which filling, windows and statistics read as values.

An empty split (no row in its time range) is an error here; a split without a window is checked once the windows
exist (:mod:`.split_checks`).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from lightning_lstm.data.frame import SeriesFrame
from lightning_lstm.data.timestamps import TimeParsing, parse_boundary

SPLITS = ("train", "val", "test")
Spans = dict[str, list[tuple[int, int]]]  # per split, per series the [start, stop) rows


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


def has_validation(val_fraction: float, val_start: str | int | None) -> bool:
    """Whether the config asks for a validation split (``TimeSeriesDataModule.has_validation`` asks this)."""
    return val_start is not None or val_fraction > 0


def check_split_options(
    val_fraction: float, test_fraction: float, val_start: str | int | None, test_start: str | int | None
) -> None:
    """Raise a ValueError naming the ``data.`` key when the split options leave a required split without a share."""
    for key, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"data.{key} must be in [0, 1), got {fraction}")
    if test_start is None and test_fraction == 0:
        raise ValueError("data.test_fraction is 0 and data.test_start is empty: give the test span a share")
    if val_start is None and test_start is None and val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction} leaves nothing for training"
        )


def _to_time(value: str | int, frame: SeriesFrame, key: str) -> int:
    """A boundary read like the frame's time column (its format, day/month order and UTC conversion)."""
    parsing = frame.time_parsing or (TimeParsing(None, False, False) if frame.is_datetime else None)
    return parse_boundary(value, parsing, key, frame.source)


def _time_at_fraction(frame: SeriesFrame, fraction: float) -> int:
    """The timestamp that leaves ``fraction`` of the distinct timestamps at or after it."""
    if frame.times is None:
        n = frame.values.shape[0]
        return int(n - round(n * fraction))
    distinct = np.unique(frame.times)
    position = min(len(distinct) - 1, max(0, len(distinct) - round(len(distinct) * fraction)))
    return int(distinct[position]) if fraction > 0 else int(distinct[-1]) + 1


def _time_before(frame: SeriesFrame, end: int, fraction: float) -> int:
    """The timestamp ``fraction`` of all distinct timestamps before ``end`` (validation right before a test_start)."""
    if frame.times is None:  # time is the row number
        n = frame.values.shape[0]
        before = min(max(end, 0), n)
        return end if before == 0 else max(0, before - max(1, round(n * fraction)))
    distinct = np.unique(frame.times)
    before = int(np.searchsorted(distinct, end, side="left"))
    if before == 0:
        return end
    return int(distinct[max(0, before - max(1, round(len(distinct) * fraction)))])


def split_boundaries(
    frame: SeriesFrame,
    val_fraction: float,
    test_fraction: float,
    val_start: str | int | None,
    test_start: str | int | None,
) -> SplitBoundaries:
    """Boundaries from timestamps (``val_start``/``test_start``) or fractions of the timeline.

    With ``test_start`` alone, validation is the ``val_fraction`` of the timeline right before it. A split left
    without rows in every series is an error naming the split, its start and the data's time range.
    """
    if test_start is not None:
        test_time, test_key = _to_time(test_start, frame, "data.test_start"), "data.test_start"
    else:
        test_time, test_key = _time_at_fraction(frame, test_fraction), f"data.test_fraction = {test_fraction}"
    with_val = has_validation(val_fraction, val_start)
    if val_start is not None:
        val_time, val_key = _to_time(val_start, frame, "data.val_start"), "data.val_start"
    elif val_fraction == 0:
        val_time, val_key = test_time, "data.val_fraction = 0"
    elif test_start is not None:
        val_time, val_key = _time_before(frame, test_time, val_fraction), f"data.val_fraction = {val_fraction}"
    else:
        val_time = _time_at_fraction(frame, val_fraction + test_fraction)
        val_key = f"data.val_fraction = {val_fraction}"
    if val_time > test_time:
        shown_val, shown_test = frame.format_times([val_time, test_time])
        raise ValueError(
            f"the validation split starts at {shown_val} ({val_key}), after the test split at "
            f"{shown_test} ({test_key}): the splits overlap. Validation must come before test: "
            "move data.val_start before data.test_start."
        )
    val_row = np.empty(frame.num_series, dtype=np.int64)
    test_row = np.empty(frame.num_series, dtype=np.int64)
    for s in range(frame.num_series):
        a, b = int(frame.offsets[s]), int(frame.offsets[s + 1])
        if frame.times is None:  # time is the row number: no N-sized index is built
            val_row[s], test_row[s] = (a + min(max(t - a, 0), b - a) for t in (val_time, test_time))
        else:
            val_row[s] = a + np.searchsorted(frame.times[a:b], val_time, side="left")
            test_row[s] = a + np.searchsorted(frame.times[a:b], test_time, side="left")
    bounds = SplitBoundaries(val_row=val_row, test_row=test_row, val_time=val_time, test_time=test_time)
    _check_not_empty(frame, bounds, with_val, val_key, test_key)
    return bounds


def _check_not_empty(frame: SeriesFrame, bounds: SplitBoundaries, with_val: bool, val_key: str, test_key: str) -> None:
    if frame.times is None:
        first, last = frame.format_times([0, frame.values.shape[0] - 1])
    else:
        first, last = frame.format_times([frame.times.min(), frame.times.max()])
    shown_val, shown_test = frame.format_times([bounds.val_time, bounds.test_time])
    starts, ends = frame.offsets[:-1], frame.offsets[1:]
    rows = {
        "train": int((bounds.val_row - starts).sum()),
        "validation": int((bounds.test_row - bounds.val_row).sum()),
        "test": int((ends - bounds.test_row).sum()),
    }
    span = {
        "train": f"before {shown_val} ({val_key})",
        "validation": f"from {shown_val} ({val_key}) to before {shown_test} ({test_key})",
        "test": f"from {shown_test} ({test_key})",
    }
    for split, n in rows.items():
        if n == 0 and (split != "validation" or with_val):
            raise ValueError(
                f"{frame.source}: the {split} split is empty: no row lies {span[split]}, and the data run from "
                f"{first} to {last}. Choose data.val_start / data.test_start inside that range, or use "
                "data.val_fraction / data.test_fraction."
            )


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


def split_spans(frame: SeriesFrame, bounds: SplitBoundaries | None) -> Spans:
    """The spans of every split in time order (``train``, ``val``, ``test``): each series' spans follow each other.
    Without ``bounds`` (forecasting needs no split) one ``all`` span per series, the whole series."""
    if bounds is None:
        return {"all": [(int(a), int(b)) for a, b in pairwise(frame.offsets)]}
    return {split: span_rows(frame, bounds, split) for split in SPLITS}

"""Chronological train/val/test boundaries, the same timestamps for every series of a panel file.

Also the two messages that explain a split that does not work: an empty split (no row in its time range) and a
split without a window (too few rows for ``lookback + horizon``), each with the numbers that would work; and the
summary the data module logs once the splits hold windows (:func:`split_summary`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lightning_lstm.data.frame import SeriesFrame
from lightning_lstm.data.gaps import Gaps, gap_summary
from lightning_lstm.data.timestamps import TimeParsing, parse_boundary

if TYPE_CHECKING:
    from lightning_lstm.data.windows import WindowIndex


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


def rows_needed(
    lookback: int, horizon: int, val_fraction: float, test_fraction: float, val_start: object, test_start: object
) -> int:
    """Shortest series that gives every split a window: exact for fractions, a lower bound with dates.

    Training needs ``lookback + horizon`` rows, validation and test ``horizon`` rows each (their inputs reach back).
    """
    with_val = has_validation(val_fraction, val_start)
    need = lookback + horizon + horizon * (2 if with_val else 1)
    if val_start is None and test_start is None:
        shares = [(lookback + horizon, 1.0 - val_fraction - test_fraction), (horizon, test_fraction)]
        shares += [(horizon, val_fraction)] if val_fraction > 0 else []
        need = max([need] + [int(np.ceil(rows / share - 1e-9)) for rows, share in shares])
    return need


def no_window_message(
    frame: SeriesFrame,
    bounds: SplitBoundaries,
    split: str,
    lookback: int,
    horizon: int,
    val_fraction: float,
    test_fraction: float,
    val_start: str | int | None,
    test_start: str | int | None,
) -> str:
    """Why ``split`` has no window: the series' length, the split's, and the length these splits need."""
    rows = [b - a for a, b in span_rows(frame, bounds, split)]
    longest = int(np.diff(frame.offsets).max())
    inside = "" if split == "train" else f" (its {horizon} target rows inside the split)"
    series_needs = rows_needed(lookback, horizon, val_fraction, test_fraction, val_start, test_start)
    return (
        f"{frame.source}: the {split} split has no window: the series has {longest} rows and its {split} "
        f"split {max(rows)}, but a window needs lookback + horizon = {lookback} + {horizon} = {lookback + horizon} "
        f"rows{inside}, so a series needs at least {series_needs} rows with these splits. Lower "
        "data.lookback / data.horizon, move the splits (data.val_fraction / data.test_fraction, "
        "data.val_start / data.test_start), or use a longer series."
    )


def check_split_windows(
    frame: SeriesFrame,
    bounds: SplitBoundaries,
    window_index: Callable[..., WindowIndex],
    lookback: int,
    horizon: int,
    val_fraction: float,
    test_fraction: float,
    val_start: str | int | None,
    test_start: str | int | None,
) -> None:
    """Every split needs a window: a ValueError with the series' length and the length the splits need, or, when
    gaps took them all, the windows skipped."""
    with_val = has_validation(val_fraction, val_start)
    for split in ["train", "val", "test"] if with_val else ["train", "test"]:
        if len(window_index(split)) > 0:
            continue
        every = len(window_index(split, skip_missing=False))
        if every:
            raise ValueError(
                f"{frame.source}: the {split} split has no window without a gap: all its {every} windows touch a "
                "value left missing (data.missing: drop, or a run longer than data.max_gap). Raise data.max_gap, "
                "move the splits (data.val_start / data.test_start), or fill the gap in the file."
            )
        options = (lookback, horizon, val_fraction, test_fraction, val_start, test_start)
        raise ValueError(no_window_message(frame, bounds, split, *options))


def split_summary(
    frame: SeriesFrame,
    bounds: SplitBoundaries,
    window_index: Callable[..., WindowIndex],
    gaps: Gaps,
    target_idx: list[int],
    clipped: dict[str, int],
) -> list[tuple[int, str]]:
    """``(logging level, message)`` lines the data module logs after fitting: rows, series, windows per split, missing
    and clipped values; per split the values filled, left missing and the windows skipped for them
    (:func:`.gaps.gap_summary`); a warning naming series without a training window.

    Args:
        window_index: ``window_index(split, skip_missing=...)`` of the data module.
        target_idx: the target columns (their filled values are left out of the scores).
    """
    indexes = {split: window_index(split) for split in ("train", "val", "test")}
    sizes = {split: len(index) for split, index in indexes.items()}
    lines = [
        (
            logging.INFO,
            f"{frame.source}: {frame.values.shape[0]} rows in {frame.num_series} series; windows {sizes}; "
            f"missing values per column {gaps.per_column} ({gaps.policy}); clipped per column on the training span "
            f"{clipped}",
        )
    ]
    if gaps.start.size:
        every = {s: len(window_index(s, skip_missing=False)) for s in sizes} if gaps.left_missing else sizes
        skipped = {split: (every[split] - sizes[split], every[split]) for split in sizes}
        spans = {split: span_rows(frame, bounds, split) for split in sizes}
        lines.append((logging.INFO, gap_summary(frame, gaps, spans, skipped, target_idx)))
    unused = sorted(set(range(frame.num_series)) - set(indexes["train"].series.tolist()))
    if unused:
        names = [frame.series_names[s] for s in unused[:10]]
        lines.append(
            (
                logging.WARNING,
                f"{frame.source}: {len(unused)} series have no training window (too short or gaps): {names}",
            )
        )
    return lines

"""The time axis of each series: repeated timestamps, resampling onto a regular grid, the step, its irregularities
and the season length it implies. Works on the long table of :mod:`lightning_lstm.data.reading`: value columns plus
``__series`` and ``__time`` (int64: ns since the epoch, or integer steps), sorted by series, then time.
"""

from __future__ import annotations

import logging
import warnings
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from lightning_lstm.data.frame import SeriesFrame

log = logging.getLogger(__name__)

DuplicatePolicy = Literal["error", "first", "last", "mean"]
DUPLICATE_POLICIES = get_args(DuplicatePolicy)
SINGLE_SERIES_NAME = "series"
IRREGULAR_FACTOR = 1.5


def resolve_duplicates(
    work: pd.DataFrame,
    columns: list[str],
    policy: DuplicatePolicy,
    path: Path,
    time_column: str | None,
    is_datetime: bool,
) -> pd.DataFrame:
    """Rows sharing a timestamp within a series: an error showing the first few, or merged into one row.

    ``first`` / ``last`` take each column's first / last observed value of the group, ``mean`` its mean (missing
    cells are skipped, so a group keeps a value if any of its rows has one).
    """
    duplicated = work.duplicated(["__series", "__time"], keep=False)
    if not duplicated.any():
        return work
    if policy == "error":
        first = work.loc[duplicated, ["__series", "__time"]].drop_duplicates().head(5)
        shown = [
            (f"{s}: " if s != SINGLE_SERIES_NAME else "") + (str(pd.Timestamp(int(t))) if is_datetime else str(t))
            for s, t in first.itertuples(index=False)
        ]
        groups = int(work.loc[duplicated, ["__series", "__time"]].drop_duplicates().shape[0])
        raise ValueError(
            f"{path}: {int(duplicated.sum())} rows share {groups} timestamp(s) in column {time_column!r}, "
            f"first: {shown}. Remove the repeats, or set data.duplicate_timestamps to first, last or mean."
        )
    log.info("%s: merged %d rows that share a timestamp (%s)", path, int(duplicated.sum()), policy)
    grouped = work.groupby(["__series", "__time"], sort=False, as_index=False)
    return grouped.agg({c: policy for c in columns})


def check_frequency(frequency: str, is_datetime: bool, path: Path) -> pd.DateOffset:
    """The pandas offset of ``data.frequency``; resampling needs datetimes."""
    if not is_datetime:
        raise ValueError(
            f"{path}: data.frequency = {frequency!r} needs a datetime time column (data.time_column); "
            "integer steps are already regular: set data.frequency: null"
        )
    try:
        return pd.tseries.frequencies.to_offset(frequency)
    except ValueError as err:
        raise ValueError(f"data.frequency: {frequency!r} is not a pandas offset alias such as '5min' or 'h'") from err


def resample(work: pd.DataFrame, columns: list[str], frequency: str) -> pd.DataFrame:
    """Each series on a regular grid: one row per bin of ``frequency``, the mean of its readings; empty bins are NaN.

    Bins are anchored at midnight (``5min`` bins start at :00, :05, ...); a reading belongs to the bin it falls in.
    """
    pieces = []
    for name, part in work.groupby("__series", sort=False):
        regular = part.set_index(pd.to_datetime(part["__time"], unit="ns"))[columns].resample(frequency).mean()
        regular["__time"] = regular.index.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        regular["__series"] = name
        pieces.append(regular.reset_index(drop=True))
    return pd.concat(pieces, ignore_index=True)


def infer_step(times: np.ndarray, offsets: np.ndarray, frequency: str | None) -> int | None:
    """The step between rows: ``frequency`` when fixed, else the median step over all series; ``None`` if unknown."""
    if frequency is not None:
        try:
            return int(pd.to_timedelta(pd.tseries.frequencies.to_offset(frequency)).value)
        except ValueError:
            pass  # calendar offsets (months, quarters) have no fixed length: use the median step below
    steps = [np.diff(times[a:b]) for a, b in pairwise(offsets) if b - a > 1]
    if not steps:
        return None
    return int(np.median(np.concatenate(steps)))


def warn_irregular(
    times: np.ndarray, offsets: np.ndarray, step: int | None, series_names: list[str], is_datetime: bool, path: Path
) -> int:
    """Warn when steps exceed ``IRREGULAR_FACTOR`` times the median step; return how many do.

    Without ``data.frequency`` a window treats consecutive rows as one step apart, so it may silently span such a gap.
    """
    if not step:
        return 0
    count, largest, where = 0, 0, ""
    for s, (a, b) in enumerate(pairwise(offsets)):
        steps = np.diff(times[a:b])
        long = np.flatnonzero(steps > IRREGULAR_FACTOR * step)
        count += long.size
        if long.size and steps[long].max() > largest:
            i = long[np.argmax(steps[long])]
            largest = int(steps[i])
            where = _show(int(times[a + i + 1]), is_datetime)
            where = f"{series_names[s]}: {where}" if len(series_names) > 1 else where
    if count:
        warnings.warn(
            f"{path}: {count} steps are longer than {IRREGULAR_FACTOR}x the median step "
            f"{_show_step(step, is_datetime)} "
            f"(largest {_show_step(largest, is_datetime)}, ending at {where}). Windows treat consecutive rows as one "
            f"step apart and may span these gaps; {_resample_hint(step, is_datetime)} to resample so gaps become "
            "missing values, with data.missing: drop to skip them.",
            stacklevel=3,
        )
    return count


def frequency_alias(step_ns: int) -> str:
    """The pandas offset alias of a step in ns: ``'h'`` for an hour, ``'30min'``, ``'D'`` / ``'7D'`` for whole days."""
    day = pd.Timedelta(days=1).value
    if step_ns % day == 0:
        return "D" if step_ns == day else f"{step_ns // day}D"
    return pd.tseries.frequencies.to_offset(pd.Timedelta(step_ns, unit="ns")).freqstr


def _resample_hint(step: int, is_datetime: bool) -> str:
    if is_datetime:
        return f"set data.frequency: '{frequency_alias(step)}' (the median step)"
    return "give a timestamp column as data.time_column and set data.frequency (e.g. 'h' for hourly rows)"


def _show(t: int, is_datetime: bool) -> str:
    return str(pd.Timestamp(t)) if is_datetime else str(t)


def _show_step(step: int, is_datetime: bool) -> str:
    return str(pd.Timedelta(step, unit="ns")) if is_datetime else f"{step} steps"


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
    """Steps per season for the seasonal-naive baseline, from the time step: daily cycle for sub-daily data, weekly
    for daily, yearly for weekly/monthly/quarterly; ``None`` if unknown."""
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

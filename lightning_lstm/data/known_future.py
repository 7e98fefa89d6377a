"""Known-future inputs: values known for the forecast steps too (``data.known_future_columns``, file columns, and
``data.calendar``, sin/cos pairs of the timestamps from :mod:`.calendar`), fed for the lookback *and* the horizon.
Each window gets ``known`` ``(B, L + H, K)``: the scaled known-future columns (statistics fitted on the training span,
stored in the checkpoint), then the calendar pairs.

In ``predict_mode: forecast`` the horizon's values come from **future rows** of the predict file (README, "Known-future
inputs"): every series' trailing rows without a target value, kept out of training, splits and filling.

``data.seasonal_lags`` add one more input per lag and target, after the calendar pairs: the scaled target one lag
earlier (:mod:`.seasonal_lags`), built from the series itself, so they need no future rows either.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np

from lightning_lstm.data.calendar import CalendarFeature, calendar_features, check_calendar
from lightning_lstm.data.column_stats import CHUNK_ROWS
from lightning_lstm.data.frame import SeriesFrame
from lightning_lstm.data.scaling import transform
from lightning_lstm.data.seasonal_lags import SeasonalLags, check_seasonal_lags
from lightning_lstm.data.statistics import FittedStatistics
from lightning_lstm.data.windows import WindowIndex

log = logging.getLogger(__name__)


class KnownFuture:
    """The known-future options of a data module: which inputs, how many per step, and the future rows it read.

    Args:
        calendar: ``data.calendar``.
        columns: ``data.known_future_columns``.
        target_columns: ``data.target_columns`` (a known-future column cannot be one).
        feature_columns: ``data.feature_columns`` as given (``None``: the targets).
        seasonal_lags: ``data.seasonal_lags`` (each >= ``horizon``).
        horizon: ``data.horizon``.
    """

    def __init__(
        self,
        calendar: list[str],
        columns: list[str],
        target_columns: list[str],
        feature_columns: list[str] | None,
        seasonal_lags: list[int] = [],
        horizon: int = 1,
    ) -> None:
        check_calendar(calendar)
        self.lags = check_seasonal_lags(list(seasonal_lags), horizon)
        self.num_targets = len(target_columns)
        if len(set(columns)) != len(columns):
            raise ValueError(f"data.known_future_columns lists a column twice: {columns}")
        for column in columns:
            if column in target_columns:
                raise ValueError(
                    f"data.known_future_columns: {column!r} is a target (data.target_columns); a target's future "
                    "values are what the model forecasts, so they cannot be known. Remove it from one of the two."
                )
            if column in (feature_columns or []):
                raise ValueError(
                    f"data.known_future_columns: {column!r} is also in data.feature_columns; known-future columns "
                    "are read for the lookback and the horizon already. Remove it from data.feature_columns."
                )
        self.calendar: list[CalendarFeature] = list(calendar)
        self.columns = list(columns)
        self.future: FutureRows | None = None

    @property
    def size(self) -> int:
        """Known-future inputs per step ``K``: one per known-future column, two (sin, cos) per calendar feature, one
        per seasonal lag and target."""
        return len(self.columns) + 2 * len(self.calendar) + len(self.lags) * self.num_targets

    @property
    def history(self) -> int:
        """Rows a window reads before its lookback: the longest seasonal lag (0 without)."""
        return max(self.lags, default=0)

    def settings(self) -> dict[str, list]:
        """The checkpoint's record of these options (restoring checks them)."""
        return {"known_future_columns": list(self.columns), "calendar": list(self.calendar), "seasonal_lags": self.lags}

    def take_future_rows(self, frame: SeriesFrame, target_columns: list[str]) -> SeriesFrame:
        """With known-future columns or the calendar on, ``frame`` without its future rows (kept in ``self.future``);
        else ``frame`` (seasonal lags alone read no future rows)."""
        if self.columns or self.calendar:
            frame, self.future = split_future_rows(frame, frame.column_index(target_columns))
        return frame

    def inputs(
        self,
        frame: SeriesFrame,
        stats: FittedStatistics,
        index: WindowIndex,
        forecast: bool,
        *window: int,
        clip: bool,
        target_columns: list[str],
    ) -> KnownFutureInputs | None:
        """The known-future block of ``index``'s windows (``window``: lookback, horizon); ``None`` when off."""
        if not self.size:
            return None
        forecast_series = index.series if forecast else None
        lags = SeasonalLags(frame.values, frame.column_index(target_columns), self.lags, *window) if self.lags else None
        inputs = (frame, stats, self.columns, self.calendar, *window, clip, self.future, forecast_series)
        return KnownFutureInputs(*inputs, lags=lags, target_idx=frame.column_index(target_columns))


@dataclass
class FutureRows:
    """Per series, the rows after its last target value: ``times[s]`` ``(n_s,)`` int64, ``values[s]`` ``(n_s, C)``."""

    times: list[np.ndarray]
    values: list[np.ndarray]


def _last_target_row(values: np.ndarray, begin: int, end: int, target_idx: list[int]) -> int:
    """Global row of the last row in ``[begin, end)`` with a finite target (``begin - 1``: none), read from the end."""
    stop = end
    while stop > begin:
        start = max(begin, stop - CHUNK_ROWS)
        seen = np.flatnonzero(np.isfinite(np.asarray(values[start:stop])[:, target_idx]).any(axis=1))
        if seen.size:
            return start + int(seen[-1])
        stop = start
    return begin - 1


def split_future_rows(frame: SeriesFrame, target_idx: list[int]) -> tuple[SeriesFrame, FutureRows]:
    """The frame without each series' trailing rows that have no target value, and those rows as :class:`FutureRows`.

    A frame without such rows comes back as it is (no copy).
    """
    bounds = list(zip(frame.offsets[:-1].tolist(), frame.offsets[1:].tolist(), strict=True))
    ends = [_last_target_row(frame.values, a, b, target_idx) + 1 for a, b in bounds]
    tails = list(zip(ends, frame.offsets[1:].tolist(), strict=True))
    future = FutureRows(  # without timestamps (.npy) the time is the row number
        [np.arange(e, b, dtype=np.int64) if frame.times is None else frame.times[e:b].copy() for e, b in tails],
        [np.asarray(frame.values[e:b], dtype=np.float32) for e, b in tails],
    )
    counts = {name: len(t) for name, t in zip(frame.series_names, future.times, strict=True) if len(t)}
    if not counts:
        return frame, future
    log.info("%s: future rows (no target value, read for forecasting only) per series: %s", frame.source, counts)
    kept = [slice(int(a), e) for a, e in zip(frame.offsets[:-1], ends, strict=True)]
    lengths = np.array([s.stop - s.start for s in kept], dtype=np.int64)
    trimmed = dataclasses.replace(
        frame,
        values=np.concatenate([np.asarray(frame.values[s], dtype=np.float32) for s in kept]),
        times=None if frame.times is None else np.concatenate([frame.times[s] for s in kept]),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
    )
    return trimmed, future


class KnownFutureInputs:
    """The ``(B, L + H, K)`` known-future block of windows: scaled known-future columns, calendar sin/cos pairs, then
    seasonal lags.

    Args:
        frame: the series (without future rows).
        stats: fitted statistics of ``frame``'s series, in frame order.
        columns: the known-future columns.
        calendar: the calendar features.
        lookback: input steps ``L``.
        horizon: forecast steps ``H``.
        clip: clip the known-future columns to their training bounds (as the model saw in training).
        future: the future rows; read only for ``forecast`` windows.
        forecast_series: series with a forecast window (``None``: windows with targets, their horizon in the frame).
        lags: the seasonal lags (``None``: none).
        target_idx: the target columns (clip bounds of the lags).
    """

    def __init__(
        self,
        frame: SeriesFrame,
        stats: FittedStatistics,
        columns: list[str],
        calendar: list[CalendarFeature],
        lookback: int,
        horizon: int,
        clip: bool,
        future: FutureRows | None = None,
        forecast_series: np.ndarray | None = None,
        lags: SeasonalLags | None = None,
        target_idx: list[int] = [],
    ) -> None:
        if calendar and not frame.is_datetime:
            raise ValueError(
                f"data.calendar = {calendar} needs datetime timestamps, but {frame.source} has integer steps: set "
                "data.time_column to a column of dates and times, or data.calendar: []"
            )
        self.frame, self.calendar, self.lookback, self.horizon = frame, list(calendar), lookback, horizon
        self.clip = clip
        self.idx = frame.column_index(columns)
        self.columns = list(columns)
        self.center, self.scale = (a[:, self.idx].astype(np.float32) for a in (stats.center, stats.scale))  # (S, Kc)
        self.low, self.high = (a[:, self.idx].astype(np.float32) for a in (stats.clip_low, stats.clip_high))
        self.lags = lags
        bounds = (stats.clip_low, stats.clip_high)
        self.target_low, self.target_high = (a[:, target_idx].astype(np.float32) for a in bounds)  # (S, T)
        self.forecast = forecast_series is not None
        if self.forecast:
            self.future_times, self.future_values = self._future_horizon(future, forecast_series)  # (S, H), (S, H, C)

    def _future_horizon(self, future: FutureRows | None, series: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per series, the forecast steps' timestamps and known-future values; a ValueError when a value is missing."""
        frame, H = self.frame, self.horizon
        last = frame.time_of(frame.offsets[1:] - 1)  # (S,) last target timestamp (an empty series is never forecast)
        times = last[:, None] + np.arange(1, H + 1) * (frame.time_step or 1)  # (S, H)
        values = np.full((frame.num_series, H, len(frame.columns)), np.nan, dtype=np.float32)
        if not self.columns:
            return times, values  # the calendar alone needs no future rows
        for s in np.asarray(series, dtype=np.int64).tolist():
            name = repr(frame.series_names[s]) if frame.num_series > 1 else "the series"
            rows_t = future.times[s][:H] if future is not None else np.empty(0, dtype=np.int64)
            if len(rows_t) < H or not np.array_equal(rows_t, times[s]):
                wanted = frame.format_times(times[s, [0, -1]])
                raise ValueError(
                    f"{frame.source}: data.known_future_columns {self.columns} need one future row per forecast step "
                    f"of {name}: {H} rows from {wanted[0]} to {wanted[1]}, the series' time step apart, after its "
                    f"last target value (target empty, known-future columns filled); found {len(rows_t)} such rows"
                    + (f" starting {frame.format_times(rows_t[:1])[0]}" if len(rows_t) else "")
                    + ". Append them to the predict file."
                )
            values[s] = future.values[s][:H]
            bad = ~np.isfinite(values[s][:, self.idx])  # (H, Kc)
            if bad.any():
                h, c = np.argwhere(bad)[0]
                raise ValueError(
                    f"{frame.source}: known-future column {self.columns[c]!r} is empty in the future rows of {name} "
                    f"({int(bad.sum())} cells, first at {frame.format_times(times[s, h : h + 1])[0]}); forecast mode "
                    "needs its values for every forecast step. Fill them in the predict file."
                )
        return times, values

    def batch(
        self,
        block: np.ndarray,
        starts: np.ndarray,
        series: np.ndarray,
        target_center: np.ndarray | None = None,
        target_scale: np.ndarray | None = None,
    ) -> np.ndarray:
        """``block`` ``(B, W, C)`` raw rows of the windows (``W = L + H``, or ``L`` for forecast windows) ->
        ``(B, L + H, K)`` float32 known-future inputs. With seasonal lags, ``target_center`` / ``target_scale``
        ``(B, 1, T)`` scale them as the window's targets are (shifted by its level under ``window_norm: last``)."""
        parts = [self._file_and_calendar(block, starts, series)]  # (B, L + H, Kc + 2k)
        if self.lags is not None:
            clip = (self.target_low[series][:, None], self.target_high[series][:, None]) if self.clip else (None, None)
            parts.append(self.lags.batch(starts, *clip, target_center, target_scale))  # (B, L + H, n_lags * T)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)  # (B, L + H, K)

    def _file_and_calendar(self, block: np.ndarray, starts: np.ndarray, series: np.ndarray) -> np.ndarray:
        """The known-future columns and calendar pairs: ``(B, L + H, Kc + 2k)``."""
        L, H = self.lookback, self.horizon
        known = block[:, :, self.idx]  # (B, W, Kc)
        if self.forecast:
            known = np.concatenate([known, self.future_values[series][:, :, self.idx]], axis=1)  # (B, L + H, Kc)
        if self.clip:
            known = np.minimum(np.maximum(known, self.low[series][:, None, :]), self.high[series][:, None, :])
        known = transform(known, self.center[series][:, None, :], self.scale[series][:, None, :])
        if not self.calendar:
            return np.ascontiguousarray(known, dtype=np.float32)
        rows = starts[:, None] + np.arange(L if self.forecast else L + H)  # (B, W)
        times = self.frame.time_of(rows)
        if self.forecast:
            times = np.concatenate([times, self.future_times[series]], axis=1)  # (B, L + H)
        parts = [known.astype(np.float32), calendar_features(times, self.calendar)]  # (B, L + H, Kc), (B, L + H, 2k)
        return np.concatenate(parts, axis=-1)  # (B, L + H, K)

"""The in-memory (or memory-mapped) form of one or many series: one contiguous value array plus offsets."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lightning_lstm.data.timestamps import TimeParsing


@dataclass
class SeriesFrame:
    """Rows of all series stacked in time order, series after series.

    Attributes:
        values: ``(N, C)`` float32 array (possibly a read-only ``np.memmap``); NaN marks a missing value.
        columns: names of the ``C`` columns.
        series_names: one name per series.
        offsets: ``(S + 1,)`` int64 row offsets; series ``s`` owns rows ``offsets[s]:offsets[s + 1]``.
        times: ``(N,)`` int64 timestamps (ns since epoch for datetimes, integer steps otherwise), or ``None`` when
            the time is the row position (``.npy`` files), so no ``N``-sized index is allocated.
        is_datetime: whether ``times`` are datetimes.
        time_step: the regular step between rows (ns for datetimes, else in steps); ``None`` if unknown.
        source: where the rows came from, for messages.
        time_parsing: how the time column's datetimes were read, so ``data.val_start`` / ``data.test_start`` are
            read alike (:mod:`.timestamps`); ``None`` for integer steps.
    """

    values: np.ndarray
    columns: list[str]
    series_names: list[str]
    offsets: np.ndarray
    times: np.ndarray | None
    is_datetime: bool
    time_step: int | None
    source: str
    time_parsing: TimeParsing | None = None

    @property
    def num_series(self) -> int:
        return len(self.series_names)

    def column_index(self, names: list[str]) -> list[int]:
        return [self.columns.index(name) for name in names]

    def time_of(self, rows: np.ndarray) -> np.ndarray:
        """Timestamps (int64) of global row positions."""
        rows = np.asarray(rows, dtype=np.int64)
        return rows.copy() if self.times is None else self.times[rows]

    def series_of(self, rows: np.ndarray) -> np.ndarray:
        """Series index of global row positions."""
        return np.searchsorted(self.offsets, np.asarray(rows), side="right") - 1

    def format_times(self, times: np.ndarray) -> list[str]:
        """Readable timestamps for messages, logs and prediction files."""
        if self.is_datetime:  # dates print without a time of day when every time is midnight
            return pd.DatetimeIndex(pd.to_datetime(np.asarray(times, dtype=np.int64), unit="ns")).astype(str).tolist()
        return [str(int(t)) for t in times]

    def describe_windows(self, starts: np.ndarray, lookback: int, horizon: int, forecast: bool) -> pd.DataFrame:
        """Series name and timestamps of windows starting at global rows ``starts``: input start, first and last
        target (for ``forecast`` windows the targets lie after the data, one time step apart)."""
        starts = np.asarray(starts, dtype=np.int64)
        targets = self.target_times(starts, lookback, horizon, forecast)  # (B, H)
        return pd.DataFrame(
            {
                "window_id": starts,
                "series": [self.series_names[s] for s in self.series_of(starts)],
                "input_start": self.format_times(self.time_of(starts)),
                "target_start": self.format_times(targets[:, 0]),
                "target_end": self.format_times(targets[:, -1]),
            }
        )

    def target_times(self, starts: np.ndarray, lookback: int, horizon: int, forecast: bool) -> np.ndarray:
        """``(B, H)`` int64 timestamps of the target steps of windows starting at global rows ``starts``."""
        starts = np.asarray(starts, dtype=np.int64)
        steps = np.arange(horizon)
        if forecast:
            return self.time_of(starts + lookback - 1)[:, None] + (steps + 1) * (self.time_step or 1)
        return self.time_of(starts[:, None] + lookback + steps)

"""Window positions by index arithmetic: a few segments per series, never one entry (or one copy) per window.

A window starting at global row ``s`` reads inputs from rows ``[s, s + lookback)`` and targets from rows
``[s + lookback, s + lookback + horizon)``. Its id is ``s``: it maps back to the series and timestamps.

A window belongs to the split that holds *all* its target rows; its inputs may reach back into the earlier split, as
they would at forecast time. The ``horizon - 1`` windows whose targets straddle a split boundary belong to no split,
so no training target is a validation value and no validation target a test value.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from lightning_lstm.data.frame import SeriesFrame
    from lightning_lstm.data.splits import Spans


@dataclass
class WindowIndex:
    """Segments of evenly spaced window starts: segment ``k`` holds ``count[k]`` starts ``first[k] + i * stride``.

    A few segments per series (one per run of rows free of missing values), so the index costs ``O(segments)``
    memory however many windows it describes.
    """

    first: np.ndarray
    count: np.ndarray
    series: np.ndarray
    stride: int

    def __post_init__(self) -> None:
        self._cumulative = np.concatenate([[0], np.cumsum(self.count)]).astype(np.int64)

    def __len__(self) -> int:
        return int(self._cumulative[-1])

    def starts(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start rows and series of window numbers ``idx`` (any shape) -> two int64 arrays of that shape."""
        idx = np.asarray(idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"window numbers must lie in [0, {len(self)}), got {idx.min()}..{idx.max()}")
        segment = np.searchsorted(self._cumulative, idx, side="right") - 1
        return self.first[segment] + (idx - self._cumulative[segment]) * self.stride, self.series[segment]


def check_sizes(minimum: int, **sizes: int | None) -> None:
    """A ValueError naming ``data.<key>`` for each size that is not an integer >= ``minimum`` (``None`` passes)."""
    for key, value in sizes.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
            raise ValueError(f"data.{key} must be an integer >= {minimum}, got {value!r}")


def clean_runs(finite: np.ndarray, begin: int, end: int) -> list[tuple[int, int]]:
    """``[a, b)`` runs of rows in ``[begin, end)`` where ``finite`` is True."""
    mask = np.concatenate([[False], finite[begin:end], [False]])
    edges = np.flatnonzero(np.diff(mask.astype(np.int8)))
    return [(begin + int(a), begin + int(b)) for a, b in zip(edges[0::2], edges[1::2], strict=True)]


def build_window_index(
    target_spans: list[tuple[int, int]],
    series_starts: np.ndarray,
    lookback: int,
    horizon: int,
    stride: int,
    finite: np.ndarray | None = None,
    history: int = 0,
) -> WindowIndex:
    """Windows whose targets lie wholly inside ``target_spans[s]`` and whose inputs stay inside series ``s``.

    Args:
        target_spans: per series, ``[lo, hi)`` rows where the split's targets may lie.
        series_starts: per series, its first row: inputs may reach back into an earlier split, never another series.
        lookback: input steps ``L``.
        horizon: target steps ``H``.
        stride: steps between consecutive window starts (counted from the split's first window).
        finite: ``(N,)`` rows free of missing values; windows touching any other row are skipped (``missing: drop``).
        history: rows a window reads before its lookback (``max(data.seasonal_lags)``), inside its series and
            free of missing values too; windows without them are skipped.
    """
    lookback += history  # a window reads [start - history, start + lookback + horizon): index that, then shift
    width = lookback + horizon
    first, count, series = [], [], []
    for s, (lo, hi) in enumerate(target_spans):
        begin = max(int(series_starts[s]), lo - lookback)  # first start whose targets begin at or after lo
        last = hi - width  # last start whose targets end by hi
        if last < begin:
            continue
        runs = [(begin, last + width)] if finite is None else clean_runs(finite, begin, last + width)
        for a, b in runs:
            aligned = begin + -(-(a - begin) // stride) * stride  # first start >= a on the split's stride grid
            n = (b - width - aligned) // stride + 1
            if n > 0:
                first.append(aligned)
                count.append(n)
                series.append(s)
    first = np.array(first, dtype=np.int64) + history
    return WindowIndex(first, np.array(count, dtype=np.int64), np.array(series, dtype=np.int64), stride)


def last_windows(offsets: np.ndarray, lookback: int, finite: np.ndarray | None = None, history: int = 0) -> WindowIndex:
    """One input window per series ending at its last row (forecasting the steps after the data).

    A series shorter than ``lookback + history``, or (with ``finite``, ``missing: drop``) whose last
    ``lookback + history`` rows touch a missing value, gets no forecast window.
    """
    lengths, need = np.diff(offsets), lookback + history
    keep = np.flatnonzero(lengths >= need)
    if finite is not None:
        keep = np.array([s for s in keep if finite[offsets[s + 1] - need : offsets[s + 1]].all()], dtype=np.int64)
    return WindowIndex(
        (offsets[1:][keep] - lookback).astype(np.int64), np.ones(len(keep), dtype=np.int64), keep.astype(np.int64), 1
    )


def check_predict_windows(
    frame: SeriesFrame,
    spans: Spans,
    split: str,
    lookback: int,
    horizon: int,
    finite: np.ndarray | None,
    history: int = 0,
) -> None:
    """``predict`` needs a window of ``split`` (``forecast`` or a backtest's): none is a ValueError naming the file, its
    rows and the lookback (and ``history``, the rows ``data.seasonal_lags`` read before it), so predict never ends
    without writing; series left without one are named in a warning."""
    index = split_windows(frame, spans, split, lookback, horizon, 1, finite, history)
    forecast, lengths = split == "forecast", np.diff(frame.offsets)
    need = history + (lookback if forecast else lookback + horizon)
    short = int((lengths < need).sum())
    what = f"lookback + horizon = {lookback + horizon} rows"
    what = f"its last data.lookback = {lookback} rows" if forecast else what
    if history:
        what = f"max(data.seasonal_lags) = {history} rows, then {what} ({need} rows)"
    if len(index) == 0:
        many = f" in {frame.num_series} series (the longest {int(lengths.max())} rows)" if frame.num_series > 1 else ""
        why = (
            f"{short} series are shorter, {frame.num_series - short} hold a value left missing there"
            if frame.num_series > 1
            else ("the series is shorter" if short else "they hold a value left missing")
        )
        raise ValueError(
            f"{frame.source}: no complete window to {'forecast from' if forecast else 'backtest'}: the file has "
            f"{int(lengths.sum())} rows{many}, and a window needs {what} of a series, each observed or filled "
            f"(runs longer than data.max_gap stay missing): {why}. Give a file with at least {need} such rows per "
            "series (the lookback and horizon are the checkpoint's)."
        )
    left = sorted(set(range(frame.num_series)) - set(index.series.tolist()))
    if left:
        names = [frame.series_names[s] for s in left[:10]]
        warnings.warn(
            f"{frame.source}: {len(left)} of {frame.num_series} series have no complete window ({what}) and get no "
            f"prediction: {names}",
            stacklevel=2,
        )


def split_windows(
    frame: SeriesFrame,
    spans: Spans,
    split: str,
    lookback: int,
    horizon: int,
    stride: int,
    finite: np.ndarray | None,
    history: int = 0,
) -> WindowIndex:
    """The windows of ``split``: ``train``, ``val``, ``test`` (targets inside ``spans[split]``), ``all`` or
    ``forecast`` (the last ``lookback`` rows of each series), every ``stride`` steps, skipping those touching a row
    outside ``finite`` or without ``history`` rows of their series before the lookback."""
    if split == "forecast":
        return last_windows(frame.offsets, lookback, finite, history)
    targets = [(int(a), int(b)) for a, b in pairwise(frame.offsets)] if split == "all" else spans[split]
    return build_window_index(targets, frame.offsets[:-1], lookback, horizon, stride, finite, history)


@dataclass
class SplitWindows:
    """The windows of each split (``train``, ``val``, ``test``) at its default stride (:meth:`default_stride`), and
    how many it had before the windows touching a value left missing were skipped.

    Attributes:
        kept: per split, the windows served.
        every: per split, the windows counted without skipping any for gaps.
    """

    kept: dict[str, WindowIndex]
    every: dict[str, int]

    @staticmethod
    def default_stride(split: str, train_stride: int) -> int:
        """Steps between windows of ``split``: ``data.stride`` for training, every window of the other splits."""
        return train_stride if split == "train" else 1

    @classmethod
    def build(
        cls,
        frame: SeriesFrame,
        spans: Spans,
        lookback: int,
        horizon: int,
        train_stride: int,
        finite: np.ndarray | None,
        history: int = 0,
    ) -> SplitWindows:
        """The windows of every split of ``spans``, skipping those touching a row outside ``finite`` or without
        ``history`` rows before their lookback (``every`` counts those without the history as skipped too)."""
        kept, every = {}, {}
        for split in spans:
            sizes = (lookback, horizon, cls.default_stride(split, train_stride))
            kept[split] = split_windows(frame, spans, split, *sizes, finite, history)
            if finite is None and not history:
                every[split] = len(kept[split])
            else:
                every[split] = len(split_windows(frame, spans, split, *sizes, None))
        return cls(kept, every)

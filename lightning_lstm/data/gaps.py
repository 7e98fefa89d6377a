"""Gaps are never bridged by invention: ``ffill`` / ``interpolate`` fill runs of at most ``data.max_gap`` consecutive
missing steps; a longer run stays missing, and every window touching it is skipped (as ``missing: drop`` skips any).

Why a small default (:data:`DEFAULT_MAX_GAP` = 3 steps): a reading or two missing between observed neighbours is well
bounded by them, but a line across a longer run stands in for structure the data never showed (the peak of a daily
cycle is a few hours wide; a 300-day outage resampled hourly would become 7,200 invented hours).

No fill looks ahead across a split: a training value is filled from training observations only (a validation value
from training and validation ones); ``ffill`` only looks back (a series' leading run takes the span's first observed
value). Filled *target* values are not observations: :meth:`Gaps.observed` marks them per window, so the loss and the
scores leave them out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lightning_lstm.data.column_stats import row_chunks
from lightning_lstm.data.frame import SeriesFrame

if TYPE_CHECKING:
    from lightning_lstm.data.splits import Spans

log = logging.getLogger(__name__)

DEFAULT_MAX_GAP = 3


@dataclass
class Gaps:
    """Runs of consecutive missing values per column, and which of them were filled.

    Attributes:
        policy: the ``data.missing`` policy that handled them.
        max_gap: the longest run that was filled (``data.max_gap``).
        per_column: missing values per column, before filling.
        start: ``(R,)`` int64 global row of each run's first missing value, sorted by column, then row.
        series: ``(R,)`` int64 series of each run.
        length: ``(R,)`` int64 missing steps of each run.
        column: ``(R,)`` int64 column of each run.
        filled: ``(R,)`` bool: filled (``length <= max_gap`` under ``ffill`` / ``interpolate``), else left missing.
        finite: ``(N,)`` bool rows without a value left missing (windows touching another row are skipped);
            ``None`` when no value is left missing.
    """

    policy: str
    max_gap: int
    per_column: dict[str, int]
    start: np.ndarray
    series: np.ndarray
    length: np.ndarray
    column: np.ndarray
    filled: np.ndarray
    finite: np.ndarray | None = None

    @property
    def left_missing(self) -> bool:
        """Whether some values stay missing, so windows must be checked for them."""
        return bool((~self.filled).any())

    def observed(self, rows: np.ndarray, columns: list[int]) -> np.ndarray:
        """``rows`` (any shape) x ``columns`` -> bool array ``(*rows.shape, len(columns))``: False where filled."""
        out = np.ones((*np.shape(rows), len(columns)), dtype=bool)
        for k, c in enumerate(columns):
            runs = np.flatnonzero(self.filled & (self.column == c))  # sorted by start: runs of a column never overlap
            if runs.size == 0:
                continue
            starts, ends = self.start[runs], self.start[runs] + self.length[runs]
            i = np.searchsorted(starts, rows, side="right") - 1
            out[..., k] = ~((i >= 0) & (rows < ends[np.maximum(i, 0)]))
        return out

    def fills_any(self, columns: list[int]) -> bool:
        return bool((self.filled & np.isin(self.column, columns)).any())

    def describe(self, spans: list[tuple[int, int]], columns: list[int] | None = None) -> tuple[int, int, int, int]:
        """Within ``spans`` (per series ``[lo, hi)``; only ``columns`` if given): values filled, longest filled run,
        values left missing, longest run left missing. A run is counted with its whole length."""
        if self.start.size == 0:
            return 0, 0, 0, 0
        lo, hi = (np.array([span[k] for span in spans], dtype=np.int64)[self.series] for k in (0, 1))  # (R,)
        inside = np.clip(np.minimum(self.start + self.length, hi) - np.maximum(self.start, lo), 0, None)
        keep = inside > 0 if columns is None else (inside > 0) & np.isin(self.column, columns)
        filled, left = keep & self.filled, keep & ~self.filled
        longest = [int(self.length[m].max()) if m.any() else 0 for m in (filled, left)]
        return int(inside[filled].sum()), longest[0], int(inside[left].sum()), longest[1]


def find_runs(frame: SeriesFrame, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(start, series, length, column)`` of every run of missing values, sorted by column, then row; one column of
    one series (those with a missing value, ``counts[s, c] > 0``) is read at a time."""
    starts, series, lengths, columns = [], [], [], []
    for c in range(counts.shape[1]):
        for s in np.flatnonzero(counts[:, c]):
            a, b = int(frame.offsets[s]), int(frame.offsets[s + 1])
            edges = np.diff(np.concatenate([[0], ~np.isfinite(np.asarray(frame.values[a:b, c])), [0]]).astype(np.int8))
            first, stop = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
            starts.append(a + first)
            series.append(np.full(first.size, s))
            lengths.append(stop - first)
            columns.append(np.full(first.size, c))
    if not starts:
        return (np.empty(0, dtype=np.int64),) * 4
    return tuple(np.concatenate(part).astype(np.int64) for part in (starts, series, lengths, columns))


def fill_runs(frame: SeriesFrame, gaps: Gaps, spans: Spans | None) -> np.ndarray:
    """A float32 copy of ``frame.values`` with the ``filled`` runs filled (``gaps.policy``), each from observations at
    or before the end of its own split (``spans``: per split in time order, per series the ``[start, stop)`` rows;
    ``None``: the whole series); a run that cannot be filled that way is marked unfilled and stays missing."""
    out = np.empty(frame.values.shape, dtype=np.float32)
    for begin, end in row_chunks(0, out.shape[0]):
        out[begin:end] = frame.values[begin:end]
    todo = np.flatnonzero(gaps.filled)
    series = gaps.series[todo]
    for s, c in sorted(set(zip(series.tolist(), gaps.column[todo].tolist(), strict=True))):
        a = int(frame.offsets[s])
        column = out[a : int(frame.offsets[s + 1]), c]  # (n,) strided view, written in place
        observed = column.copy()
        ok = np.isfinite(observed)
        wanted = np.zeros(column.size, dtype=bool)
        for r in todo[(series == s) & (gaps.column[todo] == c)]:
            wanted[gaps.start[r] - a : gaps.start[r] - a + gaps.length[r]] = True
        times = frame.times
        t = np.arange(column.size, dtype=np.float64) if times is None else (times[a : a + column.size] - times[a]) * 1.0
        pieces = [(a, int(frame.offsets[s + 1]))] if spans is None else [rows[s] for rows in spans.values()]
        for p, e in pieces:  # the series' splits in time order
            cells = np.flatnonzero(wanted[p - a : e - a]) + (p - a)
            seen = np.flatnonzero(ok[: e - a])  # observations up to this split's end: none from a later split
            if cells.size == 0 or seen.size == 0:
                continue
            if gaps.policy == "ffill":
                before = np.searchsorted(seen, cells) - 1  # the last observation before each cell
                column[cells] = observed[seen[np.maximum(before, 0)]]  # a leading run takes the first observation
            else:
                column[cells] = np.interp(t[cells], t[seen], observed[seen])
    for r in todo:  # a run with no observation in reach (a series' leading run spanning its first split) stays open
        cells = out[gaps.start[r] : gaps.start[r] + gaps.length[r], gaps.column[r]]
        if not np.isfinite(cells).all():
            cells[:] = np.nan
            gaps.filled[r] = False
    return out


def gap_summary(
    frame: SeriesFrame,
    gaps: Gaps,
    spans: dict[str, list[tuple[int, int]]],
    skipped: dict[str, tuple[int, int]],
    target_idx: list[int],
) -> str:
    """One log line: per split the values filled, the longest filled run, the values left missing and the windows
    skipped for them (of all), and the filled target values left out of the scores."""
    parts, targets = [], []
    for split, rows in spans.items():
        filled, longest, left, longest_left = gaps.describe(rows)
        dropped, total = skipped[split]
        parts.append(
            f"{split}: {filled} filled{_longest(longest)}, {left} left missing{_longest(longest_left)}, "
            f"{dropped} of {total} windows skipped for gaps"
        )
        targets.append(f"{split} {gaps.describe(rows, target_idx)[0]}")
    fill = f"data.max_gap = {gaps.max_gap}" if gaps.policy in ("ffill", "interpolate") else "nothing filled"
    return (
        f"{frame.source}: gaps ({gaps.policy}, {fill}): {'; '.join(parts)}. Filled target values, left out of the "
        f"loss and scores: {', '.join(targets)}"
    )


def _longest(steps: int) -> str:
    return f" (longest run {steps} step{'s' if steps > 1 else ''})" if steps else ""

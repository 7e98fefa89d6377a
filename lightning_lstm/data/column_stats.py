"""Chunked reads of the values: missing values counted and found, and statistics of one column that never hold more
than that column (float64 sums, in-place quantiles).

A series may be a memory-mapped ``.npy`` larger than memory. Counting and finding its missing values reads
:data:`CHUNK_ROWS` rows at a time (:mod:`.missing` applies the policy). Fitting clip bounds and scaling reads one
column of one series' training span at a time as a float32 copy (``4 * rows`` bytes) and works on it in place
(partition, sort, clip; the MAD is :func:`lightning_lstm.robust.median_abs_deviation`); every other temporary is a
chunk of :data:`CHUNK_ROWS` rows. Sums run in float64, so results match numpy on the float64 values to ~1e-12.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

import numpy as np

CHUNK_ROWS = 1 << 18


def row_chunks(start: int, stop: int) -> Iterator[tuple[int, int]]:
    """``(begin, end)`` pairs of at most :data:`CHUNK_ROWS` rows covering ``[start, stop)``."""
    for begin in range(start, stop, CHUNK_ROWS):
        yield begin, min(begin + CHUNK_ROWS, stop)


def missing_counts(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``(S, C)`` int64 non-finite values per series and column, read in chunks."""
    counts = np.zeros((len(offsets) - 1, values.shape[1]), dtype=np.int64)
    for s, (a, b) in enumerate(pairwise(offsets.tolist())):
        for begin, end in row_chunks(a, b):
            counts[s] += (end - begin) - np.count_nonzero(np.isfinite(values[begin:end]), axis=0)  # one bool chunk
    return counts


def finite_rows(values: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: rows whose every column is finite."""
    ok = np.empty(values.shape[0], dtype=bool)
    for begin, end in row_chunks(0, values.shape[0]):
        ok[begin:end] = np.isfinite(values[begin:end]).all(axis=1)
    return ok


def first_missing(values: np.ndarray, column: int, limit: int = 3) -> np.ndarray:
    """Global rows of the first ``limit`` non-finite values of ``column``; stops reading once it has them."""
    found: list[int] = []
    for begin, end in row_chunks(0, values.shape[0]):
        bad = np.flatnonzero(~np.isfinite(values[begin:end, column]))
        found.extend((begin + bad[: limit - len(found)]).tolist())
        if len(found) >= limit:
            break
    return np.asarray(found, dtype=np.int64)


def finite_column(values: np.ndarray, start: int, stop: int, column: int) -> np.ndarray:
    """``(n,)`` float32 copy of the finite values of ``values[start:stop, column]``, read in chunks.

    Only the copy is ever allocated in full: a memory-mapped file is read ``CHUNK_ROWS`` rows at a time.
    """
    out = np.empty(stop - start, dtype=np.float32)
    kept = 0
    for begin, end in row_chunks(start, stop):
        piece = out[kept : kept + end - begin]
        piece[:] = values[begin:end, column]  # copied straight into place, then compacted if it has gaps
        finite = np.isfinite(piece)
        if finite.all():
            kept += piece.size
        else:
            good = piece[finite]
            out[kept : kept + good.size] = good
            kept += good.size
    return out if kept == out.size else out[:kept].copy()


def mean_std(column: np.ndarray) -> tuple[float, float]:
    """Mean and population standard deviation (``ddof=0``) of a finite column, two chunked float64 passes."""
    n = column.size
    total = sum(float(np.sum(column[a:b], dtype=np.float64)) for a, b in row_chunks(0, n))
    mean = total / n
    squares = sum(float(np.sum(np.square(column[a:b].astype(np.float64) - mean))) for a, b in row_chunks(0, n))
    return mean, float(np.sqrt(squares / n))


def quantiles_inplace(column: np.ndarray, qs: list[float] | tuple[float, ...]) -> np.ndarray:
    """``np.quantile(column, qs)`` (method ``linear``) without a copy: partitions ``column`` in place.

    The order statistics are exact float32 values; the interpolation between them runs in float64 as numpy's does.
    """
    n = column.size
    position = np.asarray(qs, dtype=np.float64) * (n - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, n - 1)
    column.partition(np.unique(np.concatenate([low, high])))
    a, b = column[low].astype(np.float64), column[high].astype(np.float64)
    t = position - low
    diff = b - a
    return np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)  # numpy's _lerp, exact at t = 0 and 1

"""Missing values (NaN, empty cells, inf): raise, fill forward, interpolate, or leave them for windows to skip."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from lightning_lstm.data.frame import SeriesFrame

log = logging.getLogger(__name__)

MISSING_POLICIES = ("error", "ffill", "interpolate", "drop")
_CHUNK_ROWS = 1 << 20


def count_missing(values: np.ndarray) -> np.ndarray:
    """Non-finite values per column, read in chunks so a memory-mapped file is never copied whole."""
    counts = np.zeros(values.shape[1], dtype=np.int64)
    for start in range(0, values.shape[0], _CHUNK_ROWS):
        counts += (~np.isfinite(values[start : start + _CHUNK_ROWS])).sum(axis=0)
    return counts


def finite_rows(values: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: rows whose every column is finite."""
    ok = np.empty(values.shape[0], dtype=bool)
    for start in range(0, values.shape[0], _CHUNK_ROWS):
        ok[start : start + _CHUNK_ROWS] = np.isfinite(values[start : start + _CHUNK_ROWS]).all(axis=1)
    return ok


def handle_missing(frame: SeriesFrame, policy: str) -> dict[str, int]:
    """Apply ``policy`` in place (filling replaces ``frame.values``) and return the missing count per column.

    ``drop`` fills nothing: the window index skips every window that touches a missing value.
    """
    if policy not in MISSING_POLICIES:
        raise ValueError(f"data.missing must be one of {MISSING_POLICIES}, got {policy!r}")
    counts = count_missing(frame.values)
    per_column = {name: int(n) for name, n in zip(frame.columns, counts)}
    for s, name in enumerate(frame.series_names):
        a, b = frame.offsets[s], frame.offsets[s + 1]
        for c, column in enumerate(frame.columns):
            if b > a and not np.isfinite(frame.values[a:b, c]).any():
                where = f" in series {name!r}" if frame.num_series > 1 else ""
                raise ValueError(
                    f"{frame.source}: column {column!r} is entirely missing{where}; drop it from the columns used"
                )
    if counts.sum() == 0:
        return per_column
    if policy == "error":
        bad = {k: v for k, v in per_column.items() if v}
        first = np.flatnonzero(~finite_rows(frame.values))[:3]
        raise ValueError(
            f"{frame.source}: missing or non-finite values {bad} (first at {frame.format_times(frame.time_of(first))}). "
            "Set data.missing to ffill, interpolate or drop."
        )
    if policy == "drop":
        log.info("%s: missing values per column %s; windows touching them are skipped", frame.source, per_column)
        return per_column
    frame.values = _filled(frame, policy)
    log.info("%s: filled missing values per column (%s): %s", frame.source, policy, per_column)
    return per_column


def _filled(frame: SeriesFrame, policy: str) -> np.ndarray:
    """A filled float32 copy (a memory-mapped file is read-only, so filling always copies once)."""
    filled = np.array(frame.values, dtype=np.float32, copy=True)
    filled[~np.isfinite(filled)] = np.nan
    for s in range(frame.num_series):
        a, b = frame.offsets[s], frame.offsets[s + 1]
        part = pd.DataFrame(filled[a:b])
        if policy == "ffill":
            part = part.ffill().bfill()  # leading gaps take the first observed value
        else:
            part = part.interpolate(method="linear", limit_direction="both")
        filled[a:b] = part.to_numpy(dtype=np.float32)
    return filled

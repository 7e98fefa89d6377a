"""Missing values (NaN, empty cells, inf): raise, fill forward, interpolate in time, or leave them for windows to skip.

Every scan reads a chunk of rows at a time (:mod:`.column_stats`), so a memory-mapped file is never copied to count
or find its gaps.
Filling needs a writable array and makes one float32 copy of the values (a memory-mapped file stays untouched).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np

from lightning_lstm.data.column_stats import finite_rows, first_missing, missing_counts
from lightning_lstm.data.frame import SeriesFrame
from lightning_lstm.data.gaps import DEFAULT_MAX_GAP, Gaps, fill_runs, find_runs

if TYPE_CHECKING:
    from lightning_lstm.data.splits import Spans

log = logging.getLogger(__name__)

MissingPolicy = Literal["error", "ffill", "interpolate", "drop"]
MISSING_POLICIES = get_args(MissingPolicy)


def handle_missing(
    frame: SeriesFrame,
    policy: MissingPolicy,
    max_gap: int = DEFAULT_MAX_GAP,
    spans: Spans | None = None,
) -> Gaps:
    """Apply ``policy`` (filling replaces ``frame.values``) and return the runs of missing values (:class:`.Gaps`).

    ``error`` raises, naming each column with gaps and its first timestamps. ``ffill`` carries the last observed value
    forward (a leading gap takes the first observed value). ``interpolate`` is linear in time (the timestamps, not the
    row numbers, so irregular steps are weighted right) and holds the edge values at both ends. Both fill runs of at
    most ``max_gap`` steps, from observations up to the end of the run's split (``spans``: :func:`.splits.split_spans`;
    without them the whole series); longer runs stay missing. ``drop`` fills nothing. The window index skips every
    window that touches a value left missing. Every series is filled on its own.
    """
    if isinstance(max_gap, bool) or not isinstance(max_gap, int) or max_gap < 0:
        raise ValueError(f"data.max_gap must be an integer >= 0 (steps), got {max_gap!r}")
    if policy not in MISSING_POLICIES:
        raise ValueError(f"data.missing must be one of {MISSING_POLICIES}, got {policy!r}")
    counts = missing_counts(frame.values, frame.offsets)  # (S, C)
    lengths = np.diff(frame.offsets)
    for s, c in np.argwhere((counts == lengths[:, None]) & (lengths[:, None] > 0)):
        where = f" in series {frame.series_names[s]!r}" if frame.num_series > 1 else ""
        raise ValueError(
            f"{frame.source}: column {frame.columns[c]!r} is entirely missing{where} ({lengths[s]} empty or "
            "non-finite cells). Remove it from data.target_columns / data.feature_columns, or give it values."
        )
    per_column = {name: int(n) for name, n in zip(frame.columns, counts.sum(axis=0), strict=True)}
    if policy == "error" and counts.sum() > 0:  # raised before any run is scanned
        described = []
        for c, name in enumerate(frame.columns):
            if per_column[name]:
                rows = first_missing(frame.values, c)
                described.append(f"{name!r}: {per_column[name]} (first at {_where(frame, rows)})")
        raise ValueError(
            f"{frame.source}: missing or non-finite values in column {', '.join(described)}. "
            "Set data.missing to ffill, interpolate or drop (drop skips every window touching one)."
        )
    gaps = Gaps(policy, max_gap, per_column, *find_runs(frame, counts), filled=np.zeros(0, dtype=bool))
    gaps.filled = (gaps.length <= max_gap) if policy in ("ffill", "interpolate") else np.zeros(gaps.start.size, bool)
    if counts.sum() == 0:
        return gaps
    if gaps.filled.any():
        frame.values = fill_runs(frame, gaps, spans)
    gaps.finite = finite_rows(frame.values) if gaps.left_missing else None
    log.info(
        "%s: missing values per column %s (%s): %d filled in runs of at most data.max_gap = %d steps, %d left "
        "missing (windows touching them are skipped)",
        frame.source,
        per_column,
        policy,
        int(gaps.length[gaps.filled].sum()),
        max_gap,
        int(gaps.length[~gaps.filled].sum()),
    )
    return gaps


def _where(frame: SeriesFrame, rows: np.ndarray) -> list[str]:
    times = frame.format_times(frame.time_of(rows))
    if frame.num_series == 1:
        return times
    return [f"{frame.series_names[s]}: {t}" for s, t in zip(frame.series_of(rows), times, strict=True)]

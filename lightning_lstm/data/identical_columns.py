"""Identical columns: two feature (or target) columns holding the same values on the training span are reported.

A copy of a column adds no information to the network and doubles its weight in the input; it is usually a config
mistake (the target listed again under another name, a sensor exported twice). Compared by a digest of each column's
training rows, one column of one series at a time, so a memory-mapped file is never read whole.
"""

from __future__ import annotations

import hashlib
import warnings

import numpy as np

from lightning_lstm.data.frame import SeriesFrame


def identical_groups(frame: SeriesFrame, spans: list[tuple[int, int]]) -> list[list[str]]:
    """Groups of two or more of ``frame.columns`` whose values are equal on every span (NaN equal to NaN)."""
    groups: dict[bytes, list[str]] = {}
    for c, name in enumerate(frame.columns):
        digest = hashlib.sha256()
        for a, b in spans:
            column = np.array(frame.values[a:b, c], dtype=np.float32)  # (n,): one column of one series
            column[np.isnan(column)] = np.nan  # one NaN bit pattern
            digest.update(column.tobytes())
        groups.setdefault(digest.digest(), []).append(name)
    return [names for names in groups.values() if len(names) > 1]


def warn_identical_columns(frame: SeriesFrame, spans: list[tuple[int, int]]) -> None:
    """One warning per group of identical columns, naming them and the keys to drop one from."""
    for names in identical_groups(frame, spans):
        listed = " and ".join(repr(name) for name in names)
        warnings.warn(
            f"{frame.source}: columns {listed} hold identical values on the training span: the copies add no "
            "information and double that input's weight. Drop all but one from data.feature_columns (or "
            "data.target_columns).",
            stacklevel=3,
        )

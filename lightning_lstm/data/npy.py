"""``.npy`` arrays, memory-mapped: a series larger than memory is read page by page, never loaded whole.

Rows are time steps (one series, time = row number), columns are named ``"0"``, ``"1"``, ... A float32,
C-contiguous array whose columns are exactly the chosen ones, in order, stays mapped (``frame.values`` is the
read-only ``np.memmap`` itself). Anything else is converted once, in chunks, to a float32 array of the chosen columns.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from lightning_lstm.data.column_stats import row_chunks
from lightning_lstm.data.frame import SeriesFrame
from lightning_lstm.data.timeline import SINGLE_SERIES_NAME

log = logging.getLogger(__name__)


def read_npy(path: Path, columns: list[str], time_column: str | None, series_column: str | None) -> SeriesFrame:
    """A :class:`SeriesFrame` over the ``(time, columns)`` array in ``path``, memory-mapped when possible."""
    if time_column is not None or series_column is not None:
        raise ValueError(
            f"{path}: a .npy file has no named columns, so data.time_column ({time_column!r}) and "
            f"data.series_column ({series_column!r}) cannot be found; set both to null "
            "(rows are time steps, columns are named '0', '1', ...)"
        )
    try:
        values = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable .npy array ({err}); save one with numpy.save") from err
    if values.ndim == 1:
        values = values.reshape(-1, 1)  # still a memmap view
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
        raise ValueError(f"{path}: expected a non-empty (time, columns) array, got shape {values.shape}")
    available = [str(i) for i in range(values.shape[1])]
    unknown = [c for c in columns if c not in available]
    if unknown:
        raise ValueError(
            f"{path}: column(s) {unknown} not found; a .npy file's columns are named by position: {available}. "
            "Set data.target_columns / data.feature_columns to some of them."
        )
    if values.dtype == np.bool_ or not np.issubdtype(values.dtype, np.number):
        raise ValueError(f"{path}: array dtype {values.dtype} is not numeric; save a float32 array")
    chosen = [int(c) for c in columns]
    if chosen != list(range(values.shape[1])) or values.dtype != np.float32 or not values.flags.c_contiguous:
        log.info(
            "%s: converting columns %s of a %s array to float32 in memory (a float32 array of exactly the chosen "
            "columns stays memory-mapped)",
            path,
            chosen,
            values.dtype,
        )
        values = _float32_columns(values, chosen)
    return SeriesFrame(
        values=values,
        columns=list(columns),
        series_names=[SINGLE_SERIES_NAME],
        offsets=np.array([0, values.shape[0]], dtype=np.int64),
        times=None,
        is_datetime=False,
        time_step=1,
        source=str(path),
    )


def _float32_columns(values: np.ndarray, chosen: list[int]) -> np.ndarray:
    """``(N, len(chosen))`` float32 copy, read in chunks so the source is never converted whole at once."""
    out = np.empty((values.shape[0], len(chosen)), dtype=np.float32)
    for begin, end in row_chunks(0, values.shape[0]):
        out[begin:end] = values[begin:end][:, chosen]
    return out

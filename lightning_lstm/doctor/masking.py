"""Masking named values: a copy of the data with those timestamps empty, and the config keys that read it.

There is no config key for "these timestamps are wrong", so the remedy is a file: the series as the data module read
it (after resampling, merging repeated timestamps and filling gaps by the config's ``data.missing``), with the named
rows empty. The overlay points ``data.path`` at the copy; bad values are filled again by the config's policy when it
fills (``interpolate``, ``ffill``), a level shift's first row is left empty with ``data.missing: drop`` so every
window across it stays out of training. Other gaps are already filled in the copy, so they are treated as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lightning_lstm.spikes.records import LocalAnomaly


def masked_frame_table(frame, time_column: str | None, series_column: str | None, rows: list[int]) -> pd.DataFrame:
    """The frame as a table (time, series, columns), with every column of ``rows`` set to NaN."""
    values = np.array(frame.values, dtype=np.float64, copy=True)
    values[np.asarray(rows, dtype=np.int64)] = np.nan
    table = pd.DataFrame(values, columns=list(frame.columns))
    if series_column is not None:
        names = np.asarray(frame.series_names, dtype=object)
        table.insert(0, series_column, names[frame.series_of(np.arange(len(values)))])
    if time_column is not None and frame.times is not None:
        times = pd.to_datetime(frame.times, unit="ns") if frame.is_datetime else frame.times
        table.insert(0, time_column, times)
    return table


def write_masked_copy(datamodule, anomalies: list[LocalAnomaly], path: Path, drop_windows: bool) -> dict[str, Any]:
    """Writes the data with ``anomalies``' rows empty to ``path`` (CSV); returns the overlay that reads it.

    Args:
        datamodule: a set-up :class:`~lightning_lstm.data.datamodule.TimeSeriesDataModule`.
        anomalies: the values (or shifts) to mask.
        path: where the copy goes.
        drop_windows: leave the rows empty and skip every window touching them (``data.missing: drop``), else let
            the config's filling policy fill them (``drop`` too when the policy fills nothing).
    """
    hp = datamodule.hparams
    rows = sorted({a.row for a in anomalies})
    table = masked_frame_table(datamodule.frame, hp.time_column, hp.series_column, rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    fills = hp.missing in ("interpolate", "ffill")
    overlay: dict[str, Any] = {"data.path": str(path.resolve())}
    if drop_windows or not fills:
        overlay["data.missing"] = "drop"
    return overlay

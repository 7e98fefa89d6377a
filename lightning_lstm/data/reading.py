"""Read CSV, Parquet and ``.npy`` files into a :class:`SeriesFrame`: parse and sort time, check columns and duplicates.

Irregular steps, gaps and repeated timestamps
---------------------------------------------
A window is ``lookback + horizon`` consecutive *rows* of one series; the pipeline never looks at the clock inside a
window. What that means for messy timestamps (the glucose excerpt in ``tests/data`` has all three):

* **Repeated timestamps** (two rows of one series with the same time) are an error by default; the message shows the
  first few (``series: time`` in panel files). ``data.duplicate_timestamps: first | last | mean`` merges each group
  into one row instead (per column, missing cells skipped).
* **Irregular steps and gaps in time** (a sensor pauses for 3 hours): without ``data.frequency`` the rows are used as
  they are, so a window may span the gap as if it were one step; a warning counts the steps longer than 1.5x the
  median step. With ``data.frequency`` (a pandas alias: ``5min``, ``h``, ``D``) each series is resampled onto that
  grid first: readings are averaged per bin (bins anchored at midnight) and empty bins become missing values.
* **Missing values** (empty cells, NaN, inf, and the empty bins above) follow ``data.missing``: ``error`` names the
  columns and first timestamps, ``ffill`` / ``interpolate`` (linear in time) fill them and log counts per column,
  ``drop`` fills nothing and skips every window touching one, so with ``data.frequency`` no window spans a gap.

So for irregular sensor data use ``duplicate_timestamps: mean``, ``frequency: 5min``, ``missing: drop``.
Timestamps with a time zone are converted to UTC. Without ``data.time_column`` the row order is the time (integer
steps, counted per series in panel files); ``.npy`` files are always read that way (see :mod:`.npy`).
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from lightning_lstm.data.frame import SeriesFrame
from lightning_lstm.data.npy import read_npy
from lightning_lstm.data.timeline import (
    DUPLICATE_POLICIES,
    SINGLE_SERIES_NAME,
    check_frequency,
    infer_step,
    resample,
    resolve_duplicates,
    warn_irregular,
)

__all__ = ["BUNDLED_SERIES", "DUPLICATE_POLICIES", "SINGLE_SERIES_NAME", "bundled_series_path", "read_frame"]

log = logging.getLogger(__name__)

BUNDLED_SERIES = "co2_weekly_maunaloa.csv"


def bundled_series_path() -> Path:
    """Path of the bundled weekly Mauna Loa CO2 series (public domain; see ``data/bundled/README.md``)."""
    return Path(str(resources.files("lightning_lstm.data") / "bundled" / BUNDLED_SERIES))


def read_frame(
    path: str | Path,
    columns: list[str],
    time_column: str | None,
    series_column: str | None = None,
    duplicate_timestamps: str = "error",
    frequency: str | None = None,
) -> SeriesFrame:
    """Read ``columns`` of a file, sorted by series then time.

    Args:
        path: a ``.csv``, ``.parquet`` or ``.npy`` file.
        columns: numeric columns to keep (targets and features), in this order.
        time_column: column holding the timestamps; ``None`` uses the row order.
        series_column: column naming the series in a long (panel) file.
        duplicate_timestamps: ``error`` or how to merge rows sharing a timestamp (``first``, ``last``, ``mean``).
        frequency: a pandas offset alias (``"5min"``) to resample irregular series onto; gaps become missing values.
    """
    path = Path(path)
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise ValueError(f"data.path: {str(path)!r} {what}. Give a CSV, Parquet or .npy file.")
    if duplicate_timestamps not in DUPLICATE_POLICIES:
        raise ValueError(f"data.duplicate_timestamps must be one of {DUPLICATE_POLICIES}, got {duplicate_timestamps!r}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return read_npy(path, columns, time_column, series_column)
    if suffix not in (".csv", ".parquet", ".pq", ".txt"):
        raise ValueError(f"data.path: {str(path)!r} has suffix {suffix!r}; use .csv, .parquet or .npy")
    table = _read_table(path, suffix)
    wanted = columns + [c for c in (time_column, series_column) if c is not None]
    missing = [c for c in dict.fromkeys(wanted) if c not in table.columns]
    if missing:
        keys = {time_column: "data.time_column", series_column: "data.series_column"}
        named = [f"{c!r} ({keys.get(c, 'data.target_columns / data.feature_columns')})" for c in missing]
        raise ValueError(
            f"{path}: column(s) {', '.join(named)} not found. Available columns: {list(table.columns)}. "
            "Set those keys to available columns."
        )
    for column in columns:
        table[column] = _numeric_column(table[column], column, path)
    return _frame_from_table(table, path, columns, time_column, series_column, duplicate_timestamps, frequency)


def _read_table(path: Path, suffix: str) -> pd.DataFrame:
    kind = "Parquet" if suffix in (".parquet", ".pq") else "CSV"
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty (0 bytes); it needs a header row and data rows")
    try:
        table = pd.read_parquet(path) if kind == "Parquet" else pd.read_csv(path)
    except ImportError as err:
        raise ValueError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow ({err})") from err
    except pd.errors.EmptyDataError as err:
        raise ValueError(f"{path}: the file is empty; it needs a header row and data rows") from err
    except Exception as err:  # parsers raise many types (ArrowInvalid, ParserError, UnicodeDecodeError, ...)
        raise ValueError(
            f"{path}: could not read the file as {kind} ({type(err).__name__}: {err}). "
            f"Check that it is a valid {kind} file, or give it the right suffix (.csv, .parquet, .npy)."
        ) from err
    if len(table) == 0:
        raise ValueError(f"{path}: the file has a header but no data rows")
    return table


def _numeric_column(column: pd.Series, name: str, path: Path) -> pd.Series:
    if pd.api.types.is_bool_dtype(column) or not (
        pd.api.types.is_numeric_dtype(column) or column.dtype == object or pd.api.types.is_string_dtype(column)
    ):
        raise ValueError(f"{path}: column {name!r} has type {column.dtype}; features and targets must be numeric")
    numeric = pd.to_numeric(column, errors="coerce")
    bad = numeric.isna() & column.notna()
    if bad.any():
        examples = column[bad].astype(str).unique()[:3].tolist()
        raise ValueError(
            f"{path}: column {name!r} is not numeric: values such as {examples} "
            f"(first at data row {int(bad.idxmax())}, 0-based). "
            "Use numeric columns as features and targets, or leave such cells empty."
        )
    return numeric.astype("float64").replace([np.inf, -np.inf], np.nan)


def _parse_times(table: pd.DataFrame, time_column: str, path: Path) -> tuple[np.ndarray, bool]:
    raw = table[time_column]
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        if raw.isna().any():
            raise ValueError(f"{path}: time column {time_column!r} has empty cells at rows {_rows(raw.isna())}")
        fractional = raw != np.floor(raw)
        if fractional.any():
            raise ValueError(
                f"{path}: time column {time_column!r} holds numbers that are not whole steps, e.g. "
                f"{raw[fractional].head(3).tolist()}; use integer steps or datetimes"
            )
        return raw.to_numpy(dtype=np.int64), False
    parsed = pd.to_datetime(raw, errors="coerce")
    bad = parsed.isna()
    if bad.any():
        examples = raw[bad].astype(str).head(3).tolist()
        raise ValueError(
            f"{path}: time column {time_column!r} has values that are not timestamps: {examples} "
            f"(rows {_rows(bad)}). Fix them or set data.time_column to the right column."
        )
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64), True


def _rows(mask: pd.Series) -> list[int]:
    return [int(i) for i in np.flatnonzero(mask.to_numpy())[:5]]


def _frame_from_table(
    table: pd.DataFrame,
    path: Path,
    columns: list[str],
    time_column: str | None,
    series_column: str | None,
    duplicate_timestamps: str,
    frequency: str | None,
) -> SeriesFrame:
    keys = table[series_column].astype(str) if series_column else pd.Series(SINGLE_SERIES_NAME, index=table.index)
    if time_column is None:
        if frequency is not None:
            raise ValueError(f"{path}: data.frequency needs data.time_column: resampling works on timestamps")
        times, is_datetime = keys.groupby(keys, sort=False).cumcount().to_numpy(dtype=np.int64), False  # row order
    else:
        times, is_datetime = _parse_times(table, time_column, path)
    work = table[columns].copy()
    work["__time"], work["__series"] = times, keys.to_numpy()
    work = work.sort_values(["__series", "__time"], kind="stable")
    work = resolve_duplicates(work, columns, duplicate_timestamps, path, time_column, is_datetime)
    if frequency is not None:
        check_frequency(frequency, is_datetime, path)
        work = resample(work, columns, frequency)
    names = list(dict.fromkeys(work["__series"].tolist()))
    counts = work.groupby("__series", sort=False).size().reindex(names).to_numpy()
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    times = work["__time"].to_numpy(dtype=np.int64)
    step = infer_step(times, offsets, frequency)
    if frequency is None:
        warn_irregular(times, offsets, step, names, is_datetime, path)
    return SeriesFrame(
        values=np.ascontiguousarray(work[columns].to_numpy(dtype=np.float32)),
        columns=list(columns),
        series_names=names,
        offsets=offsets,
        times=times,
        is_datetime=is_datetime,
        time_step=step,
        source=str(path),
    )

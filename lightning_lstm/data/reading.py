"""Read CSV, Parquet and ``.npy`` files into a :class:`SeriesFrame`: parse and sort time, check columns and duplicates."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from lightning_lstm.data.frame import SeriesFrame

log = logging.getLogger(__name__)

BUNDLED_SERIES = "co2_weekly_maunaloa.csv"
SINGLE_SERIES_NAME = "series"
DUPLICATE_POLICIES = ("error", "first", "last", "mean")


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
        raise ValueError(f"data.path: file {str(path)!r} does not exist. Give a CSV, Parquet or .npy file.")
    if duplicate_timestamps not in DUPLICATE_POLICIES:
        raise ValueError(
            f"data.duplicate_timestamps must be one of {DUPLICATE_POLICIES}, got {duplicate_timestamps!r}"
        )
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _read_npy(path, columns, time_column, series_column)
    if suffix not in (".csv", ".parquet", ".pq", ".txt"):
        raise ValueError(f"data.path: {str(path)!r} has suffix {suffix!r}; use .csv, .parquet or .npy")
    table = _read_table(path, suffix)
    wanted = columns + [c for c in (time_column, series_column) if c is not None]
    missing = [c for c in dict.fromkeys(wanted) if c not in table.columns]
    if missing:
        raise ValueError(
            f"{path}: column(s) {missing} not found. Available columns: {list(table.columns)}. "
            "Set data.time_column / data.target_columns / data.feature_columns / data.series_column accordingly."
        )
    for column in columns:
        table[column] = _numeric_column(table[column], column, path)
    return _frame_from_table(table, path, columns, time_column, series_column, duplicate_timestamps, frequency)


def _read_table(path: Path, suffix: str) -> pd.DataFrame:
    try:
        table = pd.read_parquet(path) if suffix in (".parquet", ".pq") else pd.read_csv(path)
    except ImportError as err:
        raise ValueError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow ({err})") from err
    except pd.errors.EmptyDataError as err:
        raise ValueError(f"{path}: the file is empty; it needs a header row and data rows") from err
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as err:
        raise ValueError(f"{path}: could not read the file as {suffix.lstrip('.')} ({err})") from err
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
            f"{path}: column {name!r} is not numeric: values such as {examples} (first at row {int(bad.idxmax())}). "
            "Use numeric columns as features and targets, or leave such cells empty."
        )
    return numeric.astype("float64").replace([np.inf, -np.inf], np.nan)


def _parse_times(table: pd.DataFrame, time_column: str, path: Path) -> tuple[np.ndarray, bool]:
    raw = table[time_column]
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        if raw.isna().any():
            raise ValueError(f"{path}: time column {time_column!r} has empty cells at rows {_rows(raw.isna())}")
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
    if time_column is None:
        times, is_datetime = np.arange(len(table), dtype=np.int64), False
        if frequency is not None:
            raise ValueError("data.frequency needs data.time_column: resampling works on timestamps")
    else:
        times, is_datetime = _parse_times(table, time_column, path)
    keys = table[series_column].astype(str) if series_column else pd.Series(SINGLE_SERIES_NAME, index=table.index)
    work = table[columns].copy()
    work["__time"], work["__series"] = times, keys.to_numpy()
    work = work.sort_values(["__series", "__time"], kind="stable")
    work = _resolve_duplicates(work, columns, duplicate_timestamps, path, time_column)
    if frequency is not None:
        work = _resample(work, columns, frequency, is_datetime)
    names = list(dict.fromkeys(work["__series"].tolist()))
    counts = work.groupby("__series", sort=False).size().reindex(names).to_numpy()
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    times = work["__time"].to_numpy(dtype=np.int64)
    return SeriesFrame(
        values=np.ascontiguousarray(work[columns].to_numpy(dtype=np.float32)),
        columns=list(columns),
        series_names=names,
        offsets=offsets,
        times=times,
        is_datetime=is_datetime,
        time_step=_infer_step(times, offsets, frequency, is_datetime),
        source=str(path),
    )


def _resolve_duplicates(
    work: pd.DataFrame, columns: list[str], policy: str, path: Path, time_column: str | None
) -> pd.DataFrame:
    duplicated = work.duplicated(["__series", "__time"], keep=False)
    if not duplicated.any():
        return work
    if policy == "error":
        first = work.loc[duplicated, ["__series", "__time"]].drop_duplicates().head(5)
        shown = [
            (f"{s}: " if s != SINGLE_SERIES_NAME else "") + str(pd.Timestamp(t) if time_column else t)
            for s, t in first.itertuples(index=False)
        ]
        raise ValueError(
            f"{path}: {int(duplicated.sum())} rows share a timestamp in column {time_column!r}, first: {shown}. "
            "Remove them, or set data.duplicate_timestamps to first, last or mean."
        )
    log.info("%s: merged %d rows that share a timestamp (%s)", path, int(duplicated.sum()), policy)
    grouped = work.groupby(["__series", "__time"], sort=False, as_index=False)
    return grouped.agg({c: policy for c in columns})


def _resample(work: pd.DataFrame, columns: list[str], frequency: str, is_datetime: bool) -> pd.DataFrame:
    if not is_datetime:
        raise ValueError("data.frequency needs a datetime time column")
    try:
        pd.tseries.frequencies.to_offset(frequency)
    except ValueError as err:
        raise ValueError(f"data.frequency: {frequency!r} is not a pandas offset alias such as '5min' or 'h'") from err
    pieces = []
    for name, part in work.groupby("__series", sort=False):
        regular = part.set_index(pd.to_datetime(part["__time"], unit="ns"))[columns].resample(frequency).mean()
        regular["__time"] = regular.index.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        regular["__series"] = name
        pieces.append(regular.reset_index(drop=True))
    return pd.concat(pieces, ignore_index=True)


def _infer_step(times: np.ndarray, offsets: np.ndarray, frequency: str | None, is_datetime: bool) -> int | None:
    if frequency is not None:
        return int(pd.to_timedelta(pd.tseries.frequencies.to_offset(frequency)).value)
    steps = [np.diff(times[a:b]) for a, b in zip(offsets[:-1], offsets[1:]) if b - a > 1]
    if not steps:
        return None
    return int(np.median(np.concatenate(steps)))


def _read_npy(path: Path, columns: list[str], time_column: str | None, series_column: str | None) -> SeriesFrame:
    if time_column is not None or series_column is not None:
        raise ValueError(
            f"{path}: a .npy file has no named columns; set data.time_column: null and data.series_column: null "
            "(rows are time steps, columns are named '0', '1', ...)"
        )
    try:
        values = np.load(path, mmap_mode="r")
    except (ValueError, OSError) as err:
        raise ValueError(f"{path}: not a readable .npy array ({err})") from err
    if values.ndim == 1:
        values = values.reshape(-1, 1)
    if values.ndim != 2 or values.shape[0] == 0:
        raise ValueError(f"{path}: expected a non-empty (time, columns) array, got shape {values.shape}")
    available = [str(i) for i in range(values.shape[1])]
    missing = [c for c in columns if c not in available]
    if missing:
        raise ValueError(f"{path}: column(s) {missing} not found; a .npy file's columns are named {available}")
    if not np.issubdtype(values.dtype, np.number):
        raise ValueError(f"{path}: array dtype {values.dtype} is not numeric")
    chosen = [int(c) for c in columns]
    if chosen != list(range(values.shape[1])) or values.dtype != np.float32 or not values.flags.c_contiguous:
        log.info("%s: copying the chosen columns to float32 (memory-mapping needs a float32 array of exactly them)", path)
        values = np.ascontiguousarray(values[:, chosen], dtype=np.float32)
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

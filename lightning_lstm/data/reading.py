"""Read CSV, Parquet and ``.npy`` files into a :class:`SeriesFrame`: parse and sort time, check columns and duplicates.

``.npy`` arrays are memory-mapped: a series larger than memory is read page by page, never loaded whole. Rows are time
steps (one series, time = row number), columns are named ``"0"``, ``"1"``, ... A float32, C-contiguous array whose
columns are exactly the chosen ones, in order, stays mapped (``frame.values`` is the read-only ``np.memmap`` itself);
anything else is converted once, in chunks, to a float32 array of the chosen columns.

A window is ``lookback + horizon`` consecutive *rows* of one series; the pipeline never looks at the clock inside a
window, so messy timestamps are settled here and in the next stages (README, "Train on your own CSV"): repeated ones
(:mod:`.timeline`), irregular steps (a warning counts those longer than 1.5x the median step, unless
``data.frequency`` resamples), missing values (:mod:`.gaps`). Without ``data.time_column`` the row order is the time
(integer steps, counted per series in panel files); ``.npy`` files are always read that way.
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lightning_lstm.data.column_stats import row_chunks
from lightning_lstm.data.csv_format import check_csv_options, number_hint, read_error_hint, single_column_message
from lightning_lstm.data.frame import SeriesFrame
from lightning_lstm.data.timeline import (
    DUPLICATE_POLICIES,
    SINGLE_SERIES_NAME,
    DuplicatePolicy,
    check_frequency,
    infer_step,
    resample,
    resolve_duplicates,
    warn_irregular,
)
from lightning_lstm.data.timestamps import TimeParsing, parse_time_column

log = logging.getLogger(__name__)

BUNDLED_SERIES = "co2_weekly_maunaloa.csv"
DATAFRAME_SOURCE = "DataFrame"  # where a DataFrame's rows came from, in messages


def bundled_series_path() -> Path:
    """Path of the bundled weekly Mauna Loa CO2 series (public domain; see ``data/bundled/README.md``)."""
    return Path(str(resources.files("lightning_lstm.data") / "bundled" / BUNDLED_SERIES))


def read_frame(
    path: str | Path | pd.DataFrame,
    columns: list[str],
    time_column: str | None,
    series_column: str | None = None,
    duplicate_timestamps: DuplicatePolicy = "error",
    frequency: str | None = None,
    csv_options: dict[str, Any] | None = None,
    dayfirst: bool = False,
) -> SeriesFrame:
    """Read ``columns`` of a file (or of a pandas DataFrame: :func:`frame_from_table`), sorted by series then time.

    Args:
        path: a ``.csv``, ``.parquet`` or ``.npy`` file, or a DataFrame (never modified).
        columns: numeric columns to keep (targets and features), in this order.
        time_column: column holding the timestamps; ``None`` uses the row order.
        series_column: column naming the series in a long (panel) file.
        duplicate_timestamps: ``error`` or how to merge rows sharing a timestamp (``first``, ``last``, ``mean``).
        frequency: a pandas offset alias (``"5min"``) to resample irregular series onto; gaps become missing values.
        csv_options: keyword arguments of :func:`pandas.read_csv` (``{sep: ';', decimal: ','}``); CSV files only.
        dayfirst: read ambiguous text dates such as ``01/04/2012`` day first (1 April).
    """
    if duplicate_timestamps not in DUPLICATE_POLICIES:
        raise ValueError(f"data.duplicate_timestamps must be one of {DUPLICATE_POLICIES}, got {duplicate_timestamps!r}")
    options = check_csv_options(csv_options)
    if isinstance(path, pd.DataFrame):
        if options:
            raise ValueError("data.csv_options apply to CSV files, not to a DataFrame: set csv_options=None")
        table, source = path, DATAFRAME_SOURCE
    else:
        source = Path(path)
        if not source.is_file():
            what = "is a directory, not a file" if source.is_dir() else "does not exist"
            raise ValueError(f"data.path: {str(source)!r} {what}. Give a CSV, Parquet or .npy file.")
        suffix = data_suffix(source)
        if options and suffix not in (".csv", ".txt"):
            raise ValueError(f"data.csv_options apply to CSV files; {source} is not one: set data.csv_options: null")
        if suffix == ".npy":
            return read_npy(source, columns, time_column, series_column)
        if suffix not in (".csv", ".parquet", ".pq", ".txt"):
            raise ValueError(
                f"data.path: {str(source)!r} has suffix {suffix!r}; use .csv (or .csv.gz), .parquet or .npy"
            )
        table = _read_table(source, suffix, options)
        wanted = columns + [c for c in (time_column, series_column) if c is not None]
        lone = len(table.columns) == 1 and kind_of(suffix) == "CSV" and any(c not in table.columns for c in wanted)
        if lone and (message := single_column_message(source, str(table.columns[0]), options)):
            raise ValueError(message)  # a CSV read as one column: its separator or decimal mark named
    settings = (duplicate_timestamps, frequency, dayfirst)
    return frame_from_table(table, source, columns, time_column, series_column, *settings, options=options)


def frame_from_table(
    table: pd.DataFrame,
    source: str | Path,
    columns: list[str],
    time_column: str | None,
    series_column: str | None = None,
    duplicate_timestamps: DuplicatePolicy = "error",
    frequency: str | None = None,
    dayfirst: bool = False,
    options: dict[str, Any] | None = None,
) -> SeriesFrame:
    """A :class:`SeriesFrame` of ``columns`` of a table read from ``source`` (a file, or ``"DataFrame"``), checked
    as a file is: columns present and numeric, timestamps parsed, duplicates resolved. ``table`` is not modified.

    A DataFrame may hold ``time_column`` as its (named) index instead of a column: ``df.set_index("date")`` works.
    """
    if time_column is not None and time_column not in table.columns and table.index.name == time_column:
        table = table.reset_index()
    wanted = columns + [c for c in (time_column, series_column) if c is not None]
    missing = [c for c in dict.fromkeys(wanted) if c not in table.columns]
    if missing:
        keys = {time_column: "data.time_column", series_column: "data.series_column"}
        named = [f"{c!r} ({keys.get(c, 'data.target_columns / data.feature_columns')})" for c in missing]
        raise ValueError(
            f"{source}: column(s) {', '.join(named)} not found. Available columns: {list(table.columns)}. "
            "Set those keys to available columns."
        )
    table = table.copy(deep=False)  # the numeric columns below replace columns of the copy, not of the caller's
    for column in columns:
        table[column] = _numeric_column(table[column], column, source, options or {})
    return _frame_from_table(
        table, source, columns, time_column, series_column, duplicate_timestamps, frequency, dayfirst
    )


def data_suffix(path: Path) -> str:
    """The suffix that says the format: ``.csv`` for a gzip-compressed ``data.csv.gz`` (pandas reads it as it is,
    inferring the compression from the name), else the last suffix, lower-cased."""
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] == ".gz" and suffixes[-2] in (".csv", ".txt"):
        return suffixes[-2]
    return path.suffix.lower()


def kind_of(suffix: str) -> str:
    return "Parquet" if suffix in (".parquet", ".pq") else "CSV"


def _read_table(path: Path, suffix: str, options: dict[str, Any]) -> pd.DataFrame:
    kind = kind_of(suffix)
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: the file is empty (0 bytes); it needs a header row and data rows")
    try:
        table = pd.read_parquet(path) if kind == "Parquet" else pd.read_csv(path, **options)
    except ImportError as err:
        raise ValueError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow ({err})") from err
    except pd.errors.EmptyDataError as err:
        raise ValueError(f"{path}: the file is empty; it needs a header row and data rows") from err
    except Exception as err:  # parsers raise many types (ArrowInvalid, ParserError, UnicodeDecodeError, ...)
        used = f" with data.csv_options {options}" if options else ""
        raise ValueError(
            f"{path}: could not read the file as {kind}{used} ({type(err).__name__}: {err}). "
            f"Check that it is a valid {kind} file, or give it the right suffix (.csv, .parquet, .npy)."
            + read_error_hint(err, options)
        ) from err
    if len(table) == 0:
        raise ValueError(f"{path}: the file has a header but no data rows")
    return table


def _numeric_column(column: pd.Series, name: str, path: str | Path, options: dict[str, Any]) -> pd.Series:
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
            "Use numeric columns as features and targets, or leave such cells empty." + number_hint(examples, options)
        )
    return numeric.astype("float64").replace([np.inf, -np.inf], np.nan)


def _times(
    table: pd.DataFrame, path: str | Path, time_column: str | None, frequency: str | None, dayfirst: bool
) -> tuple[np.ndarray, TimeParsing | None]:
    """``(N,)`` int64 times and how datetimes were read (``None``: integer steps, the row order without a column)."""
    if time_column is not None:
        return parse_time_column(table[time_column], time_column, path, dayfirst)
    if frequency is not None:
        raise ValueError(f"{path}: data.frequency needs data.time_column: resampling works on timestamps")
    return np.empty(0, dtype=np.int64), None  # the row order, counted per series below


def _frame_from_table(
    table: pd.DataFrame,
    path: str | Path,
    columns: list[str],
    time_column: str | None,
    series_column: str | None,
    duplicate_timestamps: DuplicatePolicy,
    frequency: str | None,
    dayfirst: bool,
) -> SeriesFrame:
    keys = table[series_column].astype(str) if series_column else pd.Series(SINGLE_SERIES_NAME, index=table.index)
    times, parsing = _times(table, path, time_column, frequency, dayfirst)
    if time_column is None:
        times = keys.groupby(keys, sort=False).cumcount().to_numpy(dtype=np.int64)  # row order
    is_datetime = parsing is not None
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
        time_parsing=parsing,
    )


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

"""Timestamps: the time column of a file, and the boundaries a user gives (``data.val_start`` / ``data.test_start``),
read by the same rules.

Whole numbers are integer steps. Year-first text is read as ISO 8601 (``data.dayfirst`` does not apply). Other text
takes its format from the first value: month-first unless ``data.dayfirst: true``, or day-first when the first value
can only be that (``13/04/2012``); the order used is logged. UTC offsets (also ones that change at daylight saving)
and Parquet time zones are converted to naive UTC, with a log line; a column mixing values with and without an offset
is an error (their order is unknowable). Boundaries use the time column's format when they match it, else the same
rules with the column's day/month order; on UTC data a boundary without an offset is UTC, and on data without offsets
a boundary with one is an error.
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

log = logging.getLogger(__name__)

OFFSET_GROUP = r"(?i)\d:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})$"  # a time of day, then its UTC offset


@dataclass(frozen=True)
class TimeParsing:
    """How a time column of datetimes was read, so boundaries are read the same way.

    Attributes:
        format: the pandas format (``ISO8601``, ``%d/%m/%Y %H:%M``, ... or ``mixed``); ``None`` for typed datetimes.
        dayfirst: whether the day comes before the month (``data.dayfirst``, or forced by an unambiguous first value).
        utc: whether the column had UTC offsets or a time zone (now converted: times are UTC).
    """

    format: str | None
    dayfirst: bool
    utc: bool


def text_format(first: str, dayfirst: bool) -> str:
    """The pandas format for text like ``first``: ``ISO8601`` when year-first, else the guess for that day order."""
    with warnings.catch_warnings():  # pandas warns when the guess contradicts dayfirst: the log line says it instead
        warnings.simplefilter("ignore", UserWarning)
        plain = guess_datetime_format(first)
        if plain is not None and plain.startswith("%Y"):
            return "ISO8601" if plain.startswith("%Y-") else plain
        return guess_datetime_format(first, dayfirst=dayfirst) or "mixed"


def has_day_and_month(fmt: str | None) -> bool:
    """Whether ``fmt`` is a numeric day/month format that is not year-first, so its own order is the column's."""
    return fmt is not None and "%d" in fmt and "%m" in fmt and not fmt.startswith("%Y")


def is_day_first(fmt: str | None, dayfirst: bool) -> bool:
    """The day/month order: the format's own when it has one, else ``data.dayfirst``."""
    return 0 <= fmt.find("%d") < fmt.find("%m") if has_day_and_month(fmt) else dayfirst


def parse_time_column(
    raw: pd.Series, column: str, path: Path | str, dayfirst: bool = False
) -> tuple[np.ndarray, TimeParsing | None]:
    """``(N,)`` int64 times of ``raw`` (ns since the epoch, naive UTC where there were offsets; else integer steps)
    and how datetimes were read (``None`` for integer steps). Unreadable values are a ValueError naming the rows."""
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        if raw.isna().any():
            raise ValueError(f"{path}: time column {column!r} has empty cells at rows {_rows(raw.isna())}")
        fractional = raw != np.floor(raw)
        if fractional.any():
            raise ValueError(
                f"{path}: time column {column!r} holds numbers that are not whole steps, e.g. "
                f"{raw[fractional].head(3).tolist()}; use integer steps or datetimes"
            )
        return raw.to_numpy(dtype=np.int64), None
    if isinstance(raw.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(raw):  # typed (Parquet)
        parsed, parsing = raw, TimeParsing(None, dayfirst, getattr(raw.dt, "tz", None) is not None)
        if raw.isna().any():
            raise ValueError(f"{path}: time column {column!r} has empty cells at rows {_rows(raw.isna())}")
        if parsing.utc:
            log.info("%s: time column %r has time zone %s: converted to UTC", path, column, raw.dt.tz)
    else:
        text = raw.astype("string").str.strip()
        first = text.dropna().iloc[0] if text.notna().any() else ""
        fmt = text_format(first, dayfirst)
        parsing = TimeParsing(fmt, is_day_first(fmt, dayfirst), False)
        try:
            parsed = _to_datetime(text, parsing)
        except ValueError as err:  # pandas: "Mixed timezones detected" (offsets change, e.g. at daylight saving)
            if "timezone" not in str(err).lower():
                raise
            parsing = TimeParsing(fmt, parsing.dayfirst, True)
            parsed = _to_datetime(text, parsing)
        parsing = TimeParsing(fmt, parsing.dayfirst, parsing.utc or getattr(parsed.dt, "tz", None) is not None)
        offsets = _offsets(text, column, path) if parsing.utc else []
        _check_parsed(text, parsed, column, path, parsing)
        _log_reading(text, column, path, parsing, offsets)
    if parsing.utc:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64), parsing


def _to_datetime(text: pd.Series, parsing: TimeParsing) -> pd.Series:
    dayfirst = parsing.dayfirst and parsing.format == "mixed"  # other formats fix the order themselves
    return pd.to_datetime(text, errors="coerce", format=parsing.format, dayfirst=dayfirst, utc=parsing.utc)


def _offsets(text: pd.Series, column: str, path: Path | str) -> list[str]:
    """The distinct UTC offsets of a column of timestamps with offsets; a value without one is an error."""
    found = text.str.extract(OFFSET_GROUP, expand=False)
    missing = found.isna() & text.notna()
    if missing.any():
        raise ValueError(
            f"{path}: time column {column!r} mixes timestamps with a UTC offset and without one: "
            f"{text[missing].astype(str).head(3).tolist()} (rows {_rows(missing)}) have none. Give every timestamp "
            "its offset (or none), so that their order is known."
        )
    return sorted(found.dropna().str.upper().unique().tolist())


def _check_parsed(text: pd.Series, parsed: pd.Series, column: str, path: Path | str, parsing: TimeParsing) -> None:
    bad = parsed.isna()
    if not bad.any():
        return
    examples = text[bad].astype(str).head(3).tolist()
    hint = "Fix them or set data.time_column to the right column."
    if not parsing.dayfirst and any(_day_over_12(value) for value in examples):
        hint = "They look day-first: set data.dayfirst: true."
    raise ValueError(
        f"{path}: time column {column!r} has values that are not timestamps: {examples} (rows {_rows(bad)}), "
        f"read with format {parsing.format!r} taken from its first value {text.dropna().iloc[0]!r}. {hint}"
    )


def _day_over_12(value: str) -> bool:
    match = re.match(r"\s*(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}", value)
    return bool(match) and int(match.group(1)) > 12 >= int(match.group(2))


def _log_reading(text: pd.Series, column: str, path: Path | str, parsing: TimeParsing, offsets: list[str]) -> None:
    if parsing.utc:
        log.info("%s: time column %r has UTC offsets %s: converted to UTC", path, column, ", ".join(offsets))
    if has_day_and_month(parsing.format):
        order = "day first" if parsing.dayfirst else "month first"
        log.info(
            "%s: time column %r read with format %r (%s, from its first value %r); data.dayfirst sets the order",
            path,
            column,
            parsing.format,
            order,
            text.dropna().iloc[0],
        )


def parse_boundary(value: str | int, parsing: TimeParsing | None, key: str, source: str) -> int:
    """The int64 time of a boundary (``data.val_start``), read like the time column that ``parsing`` describes."""
    if parsing is None:
        try:
            return int(value)
        except (ValueError, TypeError) as err:
            raise ValueError(
                f"{key}: {value!r} must be an integer step, since {source} has no datetime column"
            ) from err
    text = str(value).strip()
    has_offset = re.search(OFFSET_GROUP, text) is not None
    if has_offset and not parsing.utc:
        raise ValueError(
            f"{key}: {value!r} has a UTC offset, but the time column of {source} has none (its times are local): "
            "give the boundary without an offset"
        )
    if not has_day_and_month(parsing.format) and not parsing.dayfirst and _ambiguous(text):
        raise ValueError(
            f"{key}: {value!r} could be month first or day first, and the time column of {source} does not say "
            "which: give it year first (such as '2012-04-01'), or set data.dayfirst: true to read it day first"
        )
    formats = [parsing.format] if parsing.format not in (None, "mixed") else []
    formats.append(text_format(text, parsing.dayfirst))
    for fmt in dict.fromkeys(formats):
        stamp = pd.to_datetime(
            pd.Series([text]), errors="coerce", format=fmt, dayfirst=parsing.dayfirst and fmt == "mixed", utc=True
        )
        if stamp.notna().all():
            return int(stamp.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").astype(np.int64)[0])
    order = " (day first, as data.dayfirst reads the time column)" if parsing.dayfirst else ""
    raise ValueError(f"{key}: {value!r} is not a timestamp; give one such as '2020-06-01'{order}")


def _ambiguous(text: str) -> bool:
    """Whether ``text`` reads as two dates, month first and day first (``01/04/2012``)."""
    month_first, day_first = text_format(text, False), text_format(text, True)
    return month_first != day_first and has_day_and_month(month_first) and has_day_and_month(day_first)


def _rows(mask: pd.Series) -> list[int]:
    return [int(i) for i in np.flatnonzero(mask.to_numpy())[:5]]

"""CSV dialects as users have them: ``data.csv_options`` passed to :func:`pandas.read_csv`, and the hints that say
which option a file needs when it does not read as given.

European exports use ``;`` between fields and a decimal comma: ``data.csv_options: {sep: ';', decimal: ','}``;
thousands separators: ``{thousands: ','}``; other encodings: ``{encoding: latin-1}``. A UTF-8 byte-order mark is
removed by pandas itself. Nothing is guessed silently: a file that parses to a single column, or a number column
holding ``12,5`` or ``1,234.5``, is an error naming the option that reads it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

SEPARATORS = (";", "\t", "|", ",")
REFUSED = {
    "filepath_or_buffer": "the file is data.path",
    "index_col": "the time column is data.time_column",
    "usecols": "the columns are data.target_columns / data.feature_columns",
    "chunksize": "the file is read whole (use a .npy file for series larger than memory)",
    "iterator": "the file is read whole (use a .npy file for series larger than memory)",
}
DECIMAL_COMMA = re.compile(r"^-?\d+,\d+$")
THOUSANDS_COMMA = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
THOUSANDS_DOT = re.compile(r"^-?\d{1,3}(\.\d{3})+(,\d+)?$")


def check_csv_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """``data.csv_options`` as keyword arguments of :func:`pandas.read_csv`; a ValueError names a refused key."""
    options = dict(options or {})
    for key, why in REFUSED.items():
        if key in options:
            raise ValueError(f"data.csv_options: {key!r} cannot be set here: {why}")
    return options


def shown(options: dict[str, Any]) -> str:
    """``{sep: ';', decimal: ','}`` as a user writes it in YAML."""
    return "{" + ", ".join(f"{key}: {value!r}" for key, value in options.items()) + "}"


def _head(path: Path, options: dict[str, Any], lines: int = 20) -> list[str]:
    try:
        with open(path, encoding=options.get("encoding") or "utf-8-sig", errors="replace") as handle:
            return [line.rstrip("\r\n") for _, line in zip(range(lines), handle, strict=False)]
    except OSError:
        return []


def single_column_message(path: Path, name: str, options: dict[str, Any]) -> str | None:
    """Why a CSV parsed to the one column ``name``: another separator in its header (``None`` if there is none)."""
    sep = options.get("sep", options.get("delimiter", ","))
    found = next((s for s in SEPARATORS if s != sep and s in name), None)
    if found is None:
        return None
    needed = {**{k: v for k, v in options.items() if k != "delimiter"}, "sep": found}
    rows = [line.split(found) for line in _head(path, options)[1:]]
    if any(DECIMAL_COMMA.match(field.strip()) for row in rows for field in row) and found != ",":
        needed["decimal"] = ","
    return (
        f"{path}: the file parsed to a single column {name!r} with the separator {sep!r}, but its header holds "
        f"{found!r}: the fields look {found!r}-separated"
        + (" with decimal commas" if needed.get("decimal") == "," else "")
        + f". Set data.csv_options: {shown(needed)} (column keys cannot help: there is only one column)."
    )


def number_hint(examples: list[str], options: dict[str, Any]) -> str:
    """The ``data.csv_options`` that would read text numbers like ``examples``, or ``""``."""
    values = [value.strip() for value in examples]
    if all(THOUSANDS_DOT.match(v) for v in values) and any("," in v for v in values):
        needed, what = {**options, "decimal": ",", "thousands": "."}, "'.' thousands and ',' decimals"
    elif all(DECIMAL_COMMA.match(v) for v in values) and options.get("decimal") != ",":
        needed, what = {**options, "decimal": ","}, "decimal commas"
    elif all(THOUSANDS_COMMA.match(v) for v in values) and options.get("thousands") != ",":
        needed, what = {**options, "thousands": ","}, "thousands separators"
    else:
        return ""
    return f" They look like {what}: set data.csv_options: {shown(needed)}."


def read_error_hint(err: BaseException, options: dict[str, Any]) -> str:
    """What to set after pandas failed to read a CSV with ``options``."""
    if isinstance(err, UnicodeDecodeError):
        encoding = options.get("encoding", "UTF-8")
        return f" The file is not {encoding} text: set data.csv_options: {{encoding: latin-1}} (or its encoding)."
    if isinstance(err, TypeError):  # read_csv() got an unexpected keyword argument
        return " A key of data.csv_options is not a pandas.read_csv argument."
    return ""

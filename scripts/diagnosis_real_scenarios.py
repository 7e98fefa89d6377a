"""The diagnosis benchmark's scenarios on 12 real series, all of them in the tuning half now (issue 22, item 6).

The series are in scripts/diagnosis_series/ (sources, licences, units and their real errors in its README.md). They
were split in the fifth session into a tuning half and a held-out half (v1: Miami, Sand Point, soiling, commits, San
Francisco, SST). The held-out v1 half was run once and its misses read in the sixth session, so it is tuning data
now (its scenarios keep their names and are built by ``_scenarios("held_out_v1")``). The seventh session's held-out
half v2 is tuning data too since the eighth (scripts/diagnosis_held_out_v2_scenarios.py); the held-out half is
scripts/diagnosis_held_out_scenarios.py (v3), fixed before the eighth session's rule changes. The 16 scenarios of
scripts/diagnosis_scenarios.py (CO2 and glucose) were written together with the rules, so they are tuning too.

A scenario's ``cause`` is the one the doctor should name first; ``None`` is a healthy control (no advice at all);
:data:`ANY` marks a series with real errors as shipped, where only the values the doctor names are scored (each must
be a documented error: ``known_errors``). Causes that the diagnosis has no rule for yet (``heavy_tail``,
``batch_noise``) are the ones issue 22 asks for: until they exist, those scenarios score as misses.
"""

from __future__ import annotations

import pandas as pd

from scripts.diagnosis_scenarios import REPO, TINY, Scenario, _set

ANY = "any"
"""Cause of a real-errors scenario: any first cause (or none) is accepted; named values must be documented errors."""
SERIES_DIR = REPO / "scripts" / "diagnosis_series"
TUNING_V1 = ("greensboro", "cycling", "seattle_weather", "aapl", "seattle_temps", "elnino")
HELD_OUT_V1 = ("miami", "sandpoint", "soiling", "commits", "sf_temps", "sst")
"""The first held-out half's series: seen in the sixth session, tuning data since the seventh."""


def _base(file: str, target: str, features: list[str], lookback: int, *extra: str) -> list[str]:
    """A tiny model on one CSV of scripts/diagnosis_series (horizon 1, the time column ``time``)."""
    columns = ",".join(f'"{c}"' for c in features)
    return [
        "--config",
        str(REPO / "configs" / "default.yaml"),
        *TINY,
        f"--data.path={SERIES_DIR / file}",
        "--data.time_column=time",
        f'--data.target_columns=["{target}"]',
        f"--data.feature_columns=[{columns}]",
        f"--data.lookback={lookback}",
        "--data.horizon=1",
        "--data.window_norm=none",
        *extra,
    ]


GREENSBORO = ["rel_humidity_pct", "pressure_mbar", "wind_speed_ms", "total_cloud_tenths", "ghi_wm2"]
MIAMI = ["rel_humidity_pct", "pressure_mbar", "wind_speed_tenth_ms", "total_cloud_tenths", "ghi_whm2"]
SANDPOINT = ["rel_humidity_pct", "wind_speed_ms", "total_cloud_tenths", "ghi_wm2"]
HOURLY = ["--data.frequency=h", "--data.calendar=[hour_of_day]"]
SERIES: dict[str, tuple[str, list[str]]] = {  # name -> (file, base CLI arguments)
    "greensboro": (
        "greensboro_tmy3_hourly.csv",
        _base("greensboro_tmy3_hourly.csv", "temp_air_c", GREENSBORO, 48, *HOURLY),
    ),
    "greensboro_rain": (
        "greensboro_tmy3_hourly.csv",
        _base("greensboro_tmy3_hourly.csv", "temp_air_c", [*GREENSBORO, "precip_mm"], 48, *HOURLY),
    ),
    "cycling": (
        "cycling_1s.csv",
        _base(
            "cycling_1s.csv",
            "speed_ms",
            ["power_w", "cadence_rpm", "altitude_m"],
            60,
            "--data.duplicate_timestamps=mean",
            "--data.frequency=s",
        ),
    ),  # fmt: skip
    "seattle_weather": (
        "seattle_weather_daily.csv",
        _base("seattle_weather_daily.csv", "precip_mm", ["temp_max_c", "temp_min_c", "wind_ms"], 28),
    ),
    "seattle_tmax": (
        "seattle_weather_daily.csv",
        _base("seattle_weather_daily.csv", "temp_max_c", ["temp_min_c", "precip_mm", "wind_ms"], 28),
    ),
    "aapl": (
        "aapl_daily.csv",
        _base("aapl_daily.csv", "volume_shares", ["close_usd"], 20, "--data.frequency=B"),
    ),
    "seattle_temps": ("seattle_temps_hourly.csv", _base("seattle_temps_hourly.csv", "temp_f", [], 48, *HOURLY)),
    "elnino": ("elnino_monthly.csv", _base("elnino_monthly.csv", "nino12_sst_c", [], 24)),
    "miami": ("miami_tmy2_hourly.csv", _base("miami_tmy2_hourly.csv", "temp_air_tenth_c", MIAMI, 48, *HOURLY)),
    "miami_visibility": (
        "miami_tmy2_hourly.csv",
        _base("miami_tmy2_hourly.csv", "temp_air_tenth_c", [*MIAMI, "visibility_tenth_km"], 48, *HOURLY),
    ),
    "sandpoint": (
        "sandpoint_tmy3_hourly.csv",
        _base("sandpoint_tmy3_hourly.csv", "temp_air_c", SANDPOINT, 48, *HOURLY),
    ),
    "sandpoint_as_shipped": (
        "sandpoint_tmy3_hourly.csv",
        _base("sandpoint_tmy3_hourly.csv", "temp_air_c", [*SANDPOINT, "visibility_m", "precip_mm"], 48, *HOURLY),
    ),
    "soiling": (
        "soiling_pm_hourly.csv",
        _base("soiling_pm_hourly.csv", "pm2_5_gm3", ["rain_mm", "pm10_gm3"], 48, *HOURLY),
    ),
    "commits": (
        "commits_daily.csv",
        _base("commits_daily.csv", "commits", [], 28, "--data.frequency=D", "--data.calendar=[day_of_week]"),
    ),
    "sf_temps": ("sf_temps_hourly.csv", _base("sf_temps_hourly.csv", "temp_f", [], 48, *HOURLY)),
    "sst": (
        "sst_b01_30min.csv",
        _base("sst_b01_30min.csv", "sst_c", [], 48, "--data.duplicate_timestamps=mean", "--data.frequency=30min"),
    ),
}


def _rows(file: str, *fractions: float) -> list[int]:
    """Rows at these fractions of a series' length: inside the training span (the first 70%)."""
    length = sum(1 for _ in (SERIES_DIR / file).open()) - 1
    return [int(f * length) for f in fractions]


def _times(file: str, keep) -> list[str]:
    """Timestamps of the rows of ``file`` where ``keep(frame)`` holds: documented real errors."""
    frame = pd.read_csv(SERIES_DIR / file)
    return [str(pd.Timestamp(t)).removesuffix(" 00:00:00") for t in frame.loc[keep(frame), "time"]]


INJECT_AT = (0.2, 0.35, 0.5)
MSE_BATCH_8 = {"model.loss": "mse", "data.batch_size": 8}
UNSCALED = {"data.scaler": "none"}
UNSHUFFLED = {"data.shuffle": False}


def _scenarios(group: str) -> list[Scenario]:
    """The scenarios of the v1 ``tuning`` or ``held_out_v1`` group, both in the tuning half now (built on demand:
    known errors are read from the CSVs)."""

    def case(name, series, cause, what, overlay=None, inject=None, known=()) -> Scenario:
        return Scenario(
            name, series, cause, what, dict(overlay or {}), inject, half="tuning", known_errors=tuple(known)
        )

    if group == "tuning":
        return [
            case("greensboro_healthy", "greensboro", None, "hourly temperature; whole mbar, whole % covariates"),
            case("greensboro_pressure_sentinels", "greensboro", "bad_values", "3 pressure readings set to -999",
                 inject=_set(_rows("greensboro_tmy3_hourly.csv", *INJECT_AT), -999.0, column="pressure_mbar")),
            case("greensboro_unshuffled", "greensboro", "order", "hours in time order", UNSHUFFLED),
            case("greensboro_real_rain", "greensboro_rain", ANY, "as shipped, with the impossible rain hours",
                 known=_times("greensboro_tmy3_hourly.csv", lambda f: f["precip_mm"] >= 150)),
            case("cycling_healthy", "cycling", None, "1 s speed; whole W, whole rpm covariates"),
            case("cycling_cadence_sentinels", "cycling", "bad_values", "3 cadence readings set to 65535",
                 inject=_set(_rows("cycling_1s.csv", 0.1, 0.25, 0.4), 65535.0, column="cadence_rpm")),
            case("cycling_batch_8", "cycling", "batch_noise", "batch size 8", {"data.batch_size": 8}),
            case("seattle_rain_mse_batch_8", "seattle_weather", "heavy_tail", "daily rain, mse loss, batch 8",
                 MSE_BATCH_8),
            case("seattle_tmax_healthy", "seattle_tmax", None, "daily maximum temperature"),
            case("aapl_unscaled", "aapl", "unscaled", "volume (1e7 shares), scaler none", UNSCALED),
            case("aapl_volume_mse_batch_8", "aapl", "heavy_tail", "volume peaks, mse loss, batch 8", MSE_BATCH_8),
            case("seattle_temps_unshuffled", "seattle_temps", "order", "hours in time order", UNSHUFFLED),
            case("seattle_temps_drops", "seattle_temps", "bad_values", "3 hours at 2% of their value",
                 inject=_set(_rows("seattle_temps_hourly.csv", *INJECT_AT), factor=0.02, column="temp_f")),
            case("seattle_temps_healthy", "seattle_temps", None, "hourly temperature as shipped"),
            case("elnino_healthy", "elnino", None, "monthly sea surface temperature"),
            case("elnino_sentinels", "elnino", "bad_values", "3 months set to -99.99",
                 inject=_set(_rows("elnino_monthly.csv", *INJECT_AT), -99.99, column="nino12_sst_c")),
        ]  # fmt: skip
    return [
        case("miami_healthy", "miami", None, "hourly temperature (tenths); whole mbar, whole % covariates"),
        case("miami_real_visibility_codes", "miami_visibility", ANY, "as shipped, visibility 9999 = missing",
             known=_times("miami_tmy2_hourly.csv", lambda f: f["visibility_tenth_km"] == 9999)),
        case("miami_unscaled", "miami", "unscaled", "scaler none (pressure ~1017 beside tenths of a degree)",
             UNSCALED),
        case("sandpoint_real_errors", "sandpoint_as_shipped", ANY, "as shipped: -9900 codes, impossible rain",
             known=_times("sandpoint_tmy3_hourly.csv", lambda f: (f["visibility_m"] == -9900)
                          | (f["precip_mm"] == -9900) | (f["precip_mm"] >= 150))),
        case("sandpoint_humidity_sentinels", "sandpoint", "bad_values", "3 humidity readings set to -999",
             inject=_set(_rows("sandpoint_tmy3_hourly.csv", *INJECT_AT), -999.0, column="rel_humidity_pct")),
        case("sandpoint_unshuffled", "sandpoint", "order", "hours in time order", UNSHUFFLED),
        case("soiling_mse_batch_8", "soiling", "heavy_tail", "PM2.5 peaks, mse loss, batch 8", MSE_BATCH_8),
        case("soiling_unscaled", "soiling", "unscaled", "PM2.5 in g/m3 (~1e-5), scaler none", UNSCALED),
        case("soiling_real_errors", "soiling", ANY, "as shipped: a stuck end, PM10 below PM2.5",
             known=_times("soiling_pm_hourly.csv",
                          lambda f: (f["pm10_gm3"] < f["pm2_5_gm3"]) | (f["time"] >= "2015-12-22 09:00:00"))),
        case("commits_mse_batch_8", "commits", "heavy_tail", "commit bursts, mse loss, batch 8", MSE_BATCH_8),
        case("commits_unshuffled", "commits", "order", "days in time order", UNSHUFFLED),
        case("sf_temps_healthy", "sf_temps", None, "hourly temperature as shipped"),
        case("sf_temps_unshuffled", "sf_temps", "order", "hours in time order", UNSHUFFLED),
        case("sf_temps_drops", "sf_temps", "bad_values", "3 hours at 2% of their value",
             inject=_set(_rows("sf_temps_hourly.csv", *INJECT_AT), factor=0.02, column="temp_f")),
        case("sst_healthy", "sst", None, "30-min sea surface temperature"),
        case("sst_batch_8", "sst", "batch_noise", "batch size 8", {"data.batch_size": 8}),
        case("sst_drops", "sst", "bad_values", "3 readings divided by 50",
             inject=_set(_rows("sst_b01_30min.csv", *INJECT_AT), factor=0.02, column="sst_c")),
    ]  # fmt: skip


def real_scenarios() -> list[Scenario]:
    """The scenarios on the 12 real series of the fifth session (all tuning now), the v1 tuning group first."""
    return _scenarios("tuning") + _scenarios("held_out_v1")


BASES = {name: args for name, (_, args) in SERIES.items()}
"""Series name -> base CLI arguments, as ``scripts.diagnosis_scenarios.BASES``."""
SOURCES = {name: SERIES_DIR / file for name, (file, _) in SERIES.items()}
"""Series name -> its CSV, as ``scripts.diagnosis_scenarios.SOURCES``."""

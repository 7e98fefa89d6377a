"""The diagnosis benchmark's held-out half v2, tuning data since the eighth session: 13 scenarios on 5 real series.

The seventh session fixed these series and scenarios (commit ec00f03) before its rule changes and ran them once as
the held-out half; their misses were read (NOTES.md, "Seventh session, issue 22"), so they are tuning data now
(``half="tuning"``, the scenario names unchanged), as the v1 held-out half became in the seventh session. The
held-out half is scripts/diagnosis_held_out_scenarios.py (v3), fixed before the eighth session's rule changes.

The scenario kinds are the ones issue 22 asks of each half: an unshuffled real series (order), unscaled runs,
multivariate series with injected sentinels in a covariate, covariates recorded in whole units (pedestrian counts),
a small batch on a noisy series (batch noise), a heavy-tailed target under mse (heavy tail), healthy controls, a
count series, and real (not injected) errors documented in scripts/diagnosis_series/README.md.
"""

from __future__ import annotations

from scripts.diagnosis_real_scenarios import (
    ANY,
    INJECT_AT,
    MSE_BATCH_8,
    SERIES_DIR,
    UNSCALED,
    UNSHUFFLED,
    _base,
    _rows,
    _times,
)
from scripts.diagnosis_scenarios import Scenario, _set

AUCKLAND = "auckland_shortland_hourly.csv"
SERF = "serf_east_15min.csv"
BRENT = "brent_daily.csv"
MSFT = "msft_daily.csv"
WATER = "water_flow_hourly.csv"

SERIES: dict[str, tuple[str, list[str]]] = {  # name -> (file, base CLI arguments)
    "auckland": (
        AUCKLAND,
        _base(
            AUCKLAND,
            "shortland_19",
            ["high_2", "courthouse_1"],
            48,
            "--data.frequency=h",
            "--data.calendar=[hour_of_day,day_of_week]",
        ),
    ),  # fmt: skip
    "msft": (MSFT, _base(MSFT, "volume_shares", ["close_usd"], 20, "--data.frequency=B")),
    "brent": (BRENT, _base(BRENT, "brent_usd", [], 20, "--data.frequency=B")),
    "serf": (
        SERF,
        _base(SERF, "ac_power_w", ["temp_air_c"], 48, "--data.frequency=15min", "--data.calendar=[hour_of_day]"),
    ),
    "water_flow": (WATER, _base(WATER, "flow_ls", [], 24, "--data.frequency=h")),
}

MAINTENANCE_FLOW_LS = 60.0
"""Below this the pipeline's flow is one of its three documented "low value moments" (about 24 l/s against ~102)."""


def held_out_v2_scenarios() -> list[Scenario]:
    """The held-out half v2, in the tuning half now (built on demand: the documented errors are read from the CSVs)."""

    def case(name, series, cause, what, overlay=None, inject=None, known=()) -> Scenario:
        return Scenario(
            name, series, cause, what, dict(overlay or {}), inject, half="tuning", known_errors=tuple(known)
        )

    return [
        case("auckland_healthy", "auckland", None, "hourly pedestrian counts; two count covariates"),
        case("auckland_unshuffled", "auckland", "order", "hours in time order", UNSHUFFLED),
        case("auckland_covariate_sentinels", "auckland", "bad_values", "3 counts of high_2 set to 9999",
             inject=_set(_rows(AUCKLAND, *INJECT_AT), 9999.0, column="high_2")),
        case("msft_unscaled", "msft", "unscaled", "volume (5e7 shares), scaler none", UNSCALED),
        case("msft_volume_mse_batch_8", "msft", "heavy_tail", "volume peaks, mse loss, batch 8", MSE_BATCH_8),
        case("brent_healthy", "brent", None, "daily Brent price"),
        case("brent_unshuffled", "brent", "order", "trading days in time order", UNSHUFFLED),
        case("brent_drops", "brent", "bad_values", "3 days at 2% of their price",
             inject=_set(_rows(BRENT, *INJECT_AT), factor=0.02, column="brent_usd")),
        case("serf_healthy", "serf", None, "15-min PV power with air temperature"),
        case("serf_batch_8", "serf", "batch_noise", "batch size 8", {"data.batch_size": 8}),
        case("serf_temperature_sentinels", "serf", "bad_values", "3 air temperatures set to -999",
             inject=_set(_rows(SERF, *INJECT_AT), -999.0, column="temp_air_c")),
        case("serf_unscaled", "serf", "unscaled", "power in W (0-5400), scaler none", UNSCALED),
        case("water_flow_real_errors", "water_flow", ANY, "as shipped: three maintenance drops to ~24 l/s",
             known=_times(WATER, lambda f: f["flow_ls"] < MAINTENANCE_FLOW_LS)),
    ]  # fmt: skip


BASES = {name: args for name, (_, args) in SERIES.items()}
"""Series name -> base CLI arguments, as ``scripts.diagnosis_scenarios.BASES``."""
SOURCES = {name: SERIES_DIR / file for name, (file, _) in SERIES.items()}
"""Series name -> its CSV, as ``scripts.diagnosis_scenarios.SOURCES``."""

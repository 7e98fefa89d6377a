"""The diagnosis benchmark's halves: no series is in both, and the held-out half has every kind issue 22 asks for."""

from __future__ import annotations

import pandas as pd

from scripts.benchmark_diagnosis import all_scenarios
from scripts.diagnosis_held_out_scenarios import (
    IMPOSSIBLE_WIND_MPH,
    JFK_TEMPERATURE_ERROR,
    SOURCES,
    held_out_scenarios,
)
from scripts.diagnosis_held_out_v2_scenarios import MAINTENANCE_FLOW_LS, held_out_v2_scenarios
from scripts.diagnosis_held_out_v2_scenarios import SOURCES as V2_SOURCES
from scripts.diagnosis_real_scenarios import SOURCES as TUNING_SOURCES
from scripts.diagnosis_scenarios import SOURCES as LEGACY_SOURCES


def test_no_series_file_is_in_both_halves() -> None:
    held_out = {SOURCES[s.series] for s in held_out_scenarios()}
    tuning = set(TUNING_SOURCES.values()) | set(LEGACY_SOURCES.values()) | set(V2_SOURCES.values())
    assert held_out and not held_out & tuning
    assert {s.half for s in all_scenarios() if s.series in SOURCES} == {"held_out"}
    tuning_files = {path for s in all_scenarios() if s.half == "tuning" for path in _sources(s.series)}
    assert tuning_files and not tuning_files & held_out
    assert V2_SOURCES["water_flow"] in tuning_files  # the seventh session's held-out half is tuning data now


def _sources(series: str) -> list:
    """Every CSV a series name stands for (a name may be used by more than one scenario module)."""
    return [m[series] for m in (SOURCES, V2_SOURCES, TUNING_SOURCES, LEGACY_SOURCES) if series in m]


def test_scenario_names_are_unique() -> None:
    names = [s.name for s in all_scenarios()]
    assert len(names) == len(set(names))
    assert len(held_out_scenarios()) == 13 and {s.half for s in held_out_v2_scenarios()} == {"tuning"}


def test_held_out_half_has_every_kind() -> None:
    causes = {s.cause for s in held_out_scenarios()}
    assert {None, "order", "unscaled", "bad_values", "batch_noise", "heavy_tail", "any"} <= causes


def test_documented_real_errors_are_the_maintenance_drops() -> None:
    real = next(s for s in held_out_v2_scenarios() if s.name == "water_flow_real_errors")
    frame = pd.read_csv(V2_SOURCES["water_flow"])
    assert len(real.known_errors) == int((frame["flow_ls"] < MAINTENANCE_FLOW_LS).sum()) == 37
    assert max(real.known_errors) < "2022-04-29"  # all three drops lie in the training span (the first 70%)


def test_held_out_v3_documented_errors_are_in_the_training_span() -> None:
    wind = next(s for s in held_out_scenarios() if s.name == "ewr_real_wind_error")
    frame = pd.read_csv(SOURCES["ewr_wind"])
    assert wind.known_errors == ("2013-02-12 08:00:00",)
    assert frame.loc[frame["time"] == wind.known_errors[0], "wind_speed_mph"].item() > IMPOSSIBLE_WIND_MPH
    assert frame["wind_speed_mph"].drop(frame.index[frame["time"] == wind.known_errors[0]]).max() < 50
    jfk = pd.read_csv(SOURCES["jfk"]).set_index("time")["temp_f"]
    assert jfk[JFK_TEMPERATURE_ERROR] < 20 < 50 < jfk.shift(1)[JFK_TEMPERATURE_ERROR]  # 13.1 F after 57.0 F
    for series in ("ewr_wind", "jfk"):
        rows = len(pd.read_csv(SOURCES[series]))
        time = pd.read_csv(SOURCES[series])["time"]
        assert all(time.searchsorted(t) < 0.7 * rows for s in held_out_scenarios() for t in s.known_errors)


def test_the_halves_run_apart_make_one_table(tmp_path) -> None:
    import json

    from scripts.benchmark_diagnosis import failed_summary, merged_table, score_run

    tuning = next(s for s in all_scenarios() if s.name == "elnino_healthy")
    held_out = next(s for s in all_scenarios() if s.name == "ewr_healthy")
    for folder, scenario in (("a", tuning), ("b", held_out)):
        (tmp_path / folder).mkdir()
        rows = [score_run(scenario, seed, failed_summary("not run"), []) for seed in (0, 1000)]
        (tmp_path / folder / "results.json").write_text(json.dumps(rows))
        (tmp_path / folder / "run.json").write_text(json.dumps({"wall_s": 60.0, "seeds": [0, 1000]}))
    text = merged_table([tmp_path / "a" / "results.json", tmp_path / "b" / "results.json"])
    assert "| goal | tuning | held_out |" in text
    assert "| advice on healthy controls: none | 0 of 2 runs | 0 of 2 runs |" in text
    assert "tuning in 1.0 min; held_out in 1.0 min" in text

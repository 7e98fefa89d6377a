"""The diagnosis benchmark's halves: no series is in both, and the held-out half has every kind issue 22 asks for."""

from __future__ import annotations

import pandas as pd

from scripts.benchmark_diagnosis import all_scenarios
from scripts.diagnosis_held_out_scenarios import MAINTENANCE_FLOW_LS, SOURCES, held_out_scenarios
from scripts.diagnosis_real_scenarios import SOURCES as TUNING_SOURCES
from scripts.diagnosis_scenarios import SOURCES as LEGACY_SOURCES


def test_no_series_file_is_in_both_halves() -> None:
    held_out = {SOURCES[s.series] for s in held_out_scenarios()}
    tuning = set(TUNING_SOURCES.values()) | set(LEGACY_SOURCES.values())
    assert held_out and not held_out & tuning
    assert {s.half for s in all_scenarios() if s.series in SOURCES} == {"held_out"}


def test_held_out_half_has_every_kind() -> None:
    causes = {s.cause for s in held_out_scenarios()}
    assert {None, "order", "unscaled", "bad_values", "batch_noise", "heavy_tail", "any"} <= causes


def test_documented_real_errors_are_the_maintenance_drops() -> None:
    real = next(s for s in held_out_scenarios() if s.name == "water_flow_real_errors")
    frame = pd.read_csv(SOURCES["water_flow"])
    assert len(real.known_errors) == int((frame["flow_ls"] < MAINTENANCE_FLOW_LS).sum()) == 37
    assert max(real.known_errors) < "2022-04-29"  # all three drops lie in the training span (the first 70%)

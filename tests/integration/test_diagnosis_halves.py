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


def test_the_halves_run_apart_make_one_table(tmp_path) -> None:
    import json

    from scripts.benchmark_diagnosis import failed_summary, merged_table, score_run

    tuning = next(s for s in all_scenarios() if s.name == "elnino_healthy")
    held_out = next(s for s in all_scenarios() if s.name == "brent_healthy")
    for folder, scenario in (("a", tuning), ("b", held_out)):
        (tmp_path / folder).mkdir()
        rows = [score_run(scenario, seed, failed_summary("not run"), []) for seed in (0, 1000)]
        (tmp_path / folder / "results.json").write_text(json.dumps(rows))
        (tmp_path / folder / "run.json").write_text(json.dumps({"wall_s": 60.0, "seeds": [0, 1000]}))
    text = merged_table([tmp_path / "a" / "results.json", tmp_path / "b" / "results.json"])
    assert "| goal | tuning | held_out |" in text
    assert "| advice on healthy controls: none | 0 of 2 runs | 0 of 2 runs |" in text
    assert "tuning in 1.0 min; held_out in 1.0 min" in text

"""The doctor's ``report.md`` (lightning_lstm/doctor/report.py) on small summaries: the cause, the table, the fix."""

from __future__ import annotations

from lightning_lstm.doctor.options import DoctorOptions
from lightning_lstm.doctor.ranking import rank
from lightning_lstm.doctor.remedies import Candidate
from lightning_lstm.doctor.report import report_markdown

PROBE = {"spikes": [{}] * 4, "recorder": {"steps": list(range(120)), "end_val_mae": 0.5}, "wall_s": 2.0}
FINDING = {
    "cause": "order",
    "sentence": "the spikes recur at the same place of each epoch",
    "confidence": 0.8,
    "advice": "set data.shuffle: true",
    "anomalies": [],
}


def _summary(findings: list, candidates: list, winner: str | None) -> dict:
    return {
        "command": "python -m lightning_lstm doctor --config c.yaml",
        "probe_epochs": 6,
        "jobs": 2,
        "wall_s": 9.4,
        "estimate_s": 4.0,
        "findings": findings,
        "candidates": candidates,
        "winner": winner,
        "fixed_yaml": "out/fixed.yaml" if winner else None,
    }


def test_a_report_with_a_winner_names_the_cause_the_table_and_the_fix():
    candidate = Candidate("shuffle", "order", {"data.shuffle": True}, "shuffle the windows", cost="none")
    rows, winner = rank(PROBE, [(candidate, {"spikes": [], "recorder": {"end_val_mae": 0.49}, "wall_s": 2.1})], 0.02)
    summary = _summary([FINDING], [{"name": "shuffle", "cause": "order", "overlay": candidate.overlay}], "shuffle")
    report = report_markdown(summary, rows, winner, PROBE, None, DoctorOptions())
    lines = report.splitlines()
    assert lines[:5] == ["# doctor report", "", f"`{summary['command']}`", "", "Every run trained 6 epoch(s) (120 "
                         "steps), 2 at a time."]  # fmt: skip
    assert "The probe had 4 loss spike(s) in 120 optimizer steps." in lines
    assert "**Cause: order.** the spikes recur at the same place of each epoch (confidence 0.80)." in lines
    assert "| probe | your config | 4 |  | 0.5 |  | baseline |  | 2.0 |" in lines
    assert "| shuffle | shuffle the windows | 0 | 100% | 0.49 | -2.0% | **winner** | none | 2.1 |" in lines
    assert "**Fix**: `out/fixed.yaml` is your config plus `shuffle` (shuffle the windows)." in report
    assert "The doctor took 9 s: the probe alone, then 1 candidate(s) 2 at a time." in report


def test_a_quiet_report_says_nothing_stands_out_and_has_no_table():
    probe = {**PROBE, "spikes": []}
    rows, winner = rank(probe, [], 0.02)
    note = {"cause": "clip", "sentence": "gradient clipping never engaged", "advice": None}
    report = report_markdown(_summary([note], [], None), rows, winner, probe, None, DoctorOptions())
    assert "Every run trained 6 epoch(s) (120 steps) (the probe only)." in report
    assert "**Nothing stands out**" in report and "- Checked: gradient clipping never engaged." in report
    assert "## Before and after" not in report and "**Fix**" not in report and "No remedy passed" not in report


def test_sentinels_that_masking_did_not_help_are_still_called_no_readings():
    probe = {**PROBE, "spikes": []}
    sentinel = {"cause": "bad_values", "sentence": "3 value(s) lie at least 5 times their column's range beyond it",
                "confidence": 0.9, "advice": "Fix or mask these timestamps", "sentinels": True,
                "anomalies": [{"kind": "bad_value", "column": "pressure_hpa", "time": "2013-02-01 10:00:00",
                               "value": 9999.9, "reference": 1017.0, "score": float("nan"), "spikes": 0}]}  # fmt: skip
    candidate = Candidate("mask_bad_values", "bad_values", {"data.path": "m.csv"}, "mask 2013-02-01 10:00:00")
    rows, winner = rank(probe, [(candidate, {"spikes": [], "recorder": {"end_val_mae": 0.5}, "wall_s": 2.0})], 0.02)
    tried = [{"name": "mask_bad_values", "cause": "bad_values", "overlay": candidate.overlay}]
    report = report_markdown(_summary([sentinel], tried, None), rows, winner, probe, None, DoctorOptions())
    assert "**Cause: bad values.** 3 value(s) lie at least 5 times" in report
    assert "| bad value | pressure_hpa | 2013-02-01 10:00:00 | 1e+04 | 1017 | n/a | 0 |" in report
    assert "- **bad values** (sentinels, named for what they are, not for spikes): masking them did not help" in report
    assert "refuted by the runs" not in report

"""The doctor's ranking (lightning_lstm/doctor/ranking.py): refusals by validation MAE first, then by spikes; the order
by spikes, then MAE; the winner must remove spikes, or on a run without any, beat the MAE by more than the tolerance."""

from __future__ import annotations

import pytest

from lightning_lstm.doctor.ranking import Row, rank
from lightning_lstm.doctor.remedies import Candidate


def _result(spikes: int, mae: float | None) -> dict:
    return {"spikes": [{}] * spikes, "recorder": {"end_val_mae": mae}, "wall_s": 1.0}


def _candidate(name: str) -> Candidate:
    return Candidate(name, "x", {}, name)


def test_ranking_refuses_a_worse_validation_error_and_more_spikes():
    probe = _result(10, 1.0)
    runs = [
        (Candidate("worse", "x", {}, "worse MAE"), _result(0, 1.03)),
        (Candidate("more", "x", {}, "more spikes"), _result(12, 0.5)),
        (Candidate("good", "x", {}, "good"), _result(1, 1.01)),
        (Candidate("best", "x", {}, "best"), _result(0, 1.019)),
        (Candidate("failed", "x", {}, "failed"), {"error": "boom"}),
    ]
    rows, winner = rank(probe, runs, tolerance=0.02)
    assert winner.name == "best"
    verdicts = {r.name: r.refused for r in rows}
    assert verdicts["worse"].startswith("validation MAE +3.0%") and verdicts["more"].startswith("more spikes")
    assert verdicts["failed"] == "the run failed" and verdicts["good"] == ""
    assert rank(_result(0, 1.0), [(Candidate("same", "x", {}, ""), _result(0, 0.99))], 0.02)[1] is None


def test_the_tolerance_is_the_largest_accepted_worsening():
    probe = _result(4, 1.0)
    rows, winner = rank(probe, [(_candidate("in"), _result(0, 1.019)), (_candidate("over"), _result(0, 1.021))], 0.02)
    verdicts = {r.name: r.refused for r in rows}
    assert verdicts["in"] == "" and verdicts["over"] == "validation MAE +2.1% (over the 2% tolerance)"
    assert winner.name == "in"
    _, strict = rank(probe, [(_candidate("in"), _result(0, 1.019))], tolerance=0.0)
    assert strict is None  # with no tolerance, any worsening is refused


def test_the_mae_is_checked_before_the_spikes_and_a_missing_mae_is_refused():
    probe = _result(3, 1.0)
    runs = [(_candidate("both"), _result(9, 1.5)), (_candidate("nan"), _result(0, None))]
    verdicts = {r.name: r.refused for r in rank(probe, runs, 0.02)[0]}
    assert verdicts["both"].startswith("validation MAE +50.0%")  # worse on both counts: refused for the MAE
    assert verdicts["nan"] == "no finite validation MAE"


def test_rows_are_the_probe_then_accepted_by_spikes_then_mae_then_refused():
    probe = _result(6, 1.0)
    runs = [
        (_candidate("refused"), _result(7, 0.9)),
        (_candidate("two_low"), _result(2, 0.95)),
        (_candidate("zero_high"), _result(0, 1.01)),
        (_candidate("two_lower"), _result(2, 0.9)),
    ]
    rows, winner = rank(probe, runs, 0.02)
    assert [r.name for r in rows] == ["probe", "zero_high", "two_lower", "two_low", "refused"]
    assert rows[0] == Row("probe", "your config", 6, 1.0, 1.0, accepted=True)
    assert winner.name == "zero_high"  # fewest spikes wins, a 1% worse MAE is within the tolerance


def test_on_a_run_without_spikes_the_winner_must_beat_the_mae_by_more_than_the_tolerance():
    probe = _result(0, 1.0)
    assert rank(probe, [(_candidate("slight"), _result(0, 0.985))], 0.02)[1] is None
    assert rank(probe, [(_candidate("clear"), _result(0, 0.97))], 0.02)[1].name == "clear"


def test_mae_change_is_relative_to_the_probe():
    row = Row("x", "x", 0, 0.9, 1.0)
    assert row.mae_change(1.0) == pytest.approx(-0.1)
    assert row.mae_change(None) is None and row.mae_change(0.0) is None and row.mae_change(float("nan")) is None

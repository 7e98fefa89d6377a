"""The doctor's ranking (lightning_lstm/doctor/ranking.py): validation MAE on the original scale decides (issue 22):
never a fix worse than the probe by more than the tolerance; a clearly lower MAE wins even with more spikes; among
remedies within the tolerance of the best MAE, fewer spikes wins; a winner removed spikes or beat the MAE."""

from __future__ import annotations

import pytest

from lightning_lstm.doctor.ranking import Row, rank
from lightning_lstm.doctor.remedies import Candidate


def _result(spikes: int, mae: float | None) -> dict:
    return {"spikes": [{}] * spikes, "recorder": {"end_val_mae": mae}, "wall_s": 1.0}


def _candidate(name: str) -> Candidate:
    return Candidate(name, "x", {}, name)


def test_ranking_refuses_a_worse_validation_error_and_a_clearly_lower_one_wins_with_more_spikes():
    probe = _result(10, 1.0)
    runs = [
        (Candidate("worse", "x", {}, "worse MAE"), _result(0, 1.03)),
        (Candidate("more", "x", {}, "more spikes"), _result(12, 0.5)),
        (Candidate("good", "x", {}, "good"), _result(1, 1.01)),
        (Candidate("best", "x", {}, "best"), _result(0, 1.019)),
        (Candidate("failed", "x", {}, "failed"), {"error": "boom"}),
    ]
    rows, winner = rank(probe, runs, tolerance=0.02)
    # Issue 22 changed this: "more" halves the MAE, so it wins although the detector counts more spikes (it used to be
    # refused for them, and "best", the fewest spikes at a 1.9% worse MAE, won).
    assert winner.name == "more"
    verdicts = {r.name: r.refused for r in rows}
    assert verdicts["worse"].startswith("validation MAE +3.0%") and verdicts["more"] == ""
    assert verdicts["failed"] == "the run failed" and verdicts["good"] == "" and verdicts["best"] == ""
    without = [run for run in runs if run[0].name != "more"]
    assert rank(probe, without, tolerance=0.02)[1].name == "best"  # equal MAEs within the tolerance: fewer spikes
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
    # Issue 22 changed this: the MAE decides first. "two_lower" (-10%) and "refused" (-10%, now accepted with its 7
    # spikes) are within the tolerance of the best MAE, and of those the fewest spikes wins; "zero_high" (+1%) used to
    # win for its zero spikes.
    assert [r.name for r in rows] == ["probe", "two_lower", "refused", "zero_high", "two_low"]
    assert rows[0] == Row("probe", "your config", 6, 1.0, 1.0, accepted=True)
    assert winner.name == "two_lower"


def test_on_a_run_without_spikes_the_winner_must_beat_the_mae_by_more_than_the_tolerance():
    probe = _result(0, 1.0)
    assert rank(probe, [(_candidate("slight"), _result(0, 0.985))], 0.02)[1] is None
    assert rank(probe, [(_candidate("clear"), _result(0, 0.97))], 0.02)[1].name == "clear"


def test_mae_change_is_relative_to_the_probe():
    row = Row("x", "x", 0, 0.9, 1.0)
    assert row.mae_change(1.0) == pytest.approx(-0.1)
    assert row.mae_change(None) is None and row.mae_change(0.0) is None and row.mae_change(float("nan")) is None


def test_more_spikes_and_no_clearly_lower_mae_never_win():
    probe = _result(3, 1.0)
    rows, winner = rank(probe, [(_candidate("noisier"), _result(5, 0.99))], 0.02)
    assert winner is None and rows[1].accepted  # accepted (the MAE is not worse) but it neither removed spikes nor won
    rows, winner = rank(probe, [(_candidate("same"), _result(3, 0.99)), (_candidate("fewer"), _result(2, 1.015))], 0.02)
    assert winner.name == "fewer"


def test_among_mae_within_the_tolerance_of_the_best_fewer_spikes_wins():
    probe = _result(20, 1.0)
    runs = [
        (_candidate("lowest_mae"), _result(9, 0.80)),
        (_candidate("close_fewer"), _result(1, 0.815)),  # within 2% of 0.80
        (_candidate("far_fewest"), _result(0, 0.90)),  # 12.5% above the best: out of the contest
    ]
    rows, winner = rank(probe, runs, 0.02)
    assert winner.name == "close_fewer"
    assert [r.name for r in rows] == ["probe", "close_fewer", "lowest_mae", "far_fewest"]

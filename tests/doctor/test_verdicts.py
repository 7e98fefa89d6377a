"""The diagnosis the doctor stands by after its runs: confirmed hypotheses first, refuted ones withdrawn where another
was confirmed or their evidence was weak (``lightning_lstm/doctor/verdicts.py``)."""

from __future__ import annotations

from lightning_lstm.doctor.ranking import rank
from lightning_lstm.doctor.remedies import Candidate
from lightning_lstm.doctor.verdicts import CONFIRMED, REFUTED, final_findings, verdicts, withdrawn_combinations

PROBE = {"spikes": [{}] * 17, "recorder": {"steps": list(range(300)), "end_val_mae": 2.5}, "wall_s": 3.0}


def finding(cause: str, explained: int, anomalies=()) -> dict:
    return {
        "cause": cause,
        "sentence": f"{cause} evidence",
        "confidence": 0.9,
        "advice": f"fix {cause}",
        "overlay": {},
        "explained": explained,
        "anomalies": list(anomalies),
    }


def run(outcomes: dict[str, tuple[str, int, float]]):
    """Candidates and the ranking's rows for ``{name: (cause, spikes, val MAE)}``."""
    candidates = [Candidate(name, cause, {name: True}, name) for name, (cause, _, _) in outcomes.items()]
    results = {
        n: {"spikes": [{}] * s, "recorder": {"end_val_mae": m}, "wall_s": 1.0} for n, (_, s, m) in outcomes.items()
    }
    rows, _ = rank(PROBE, [(c, results[c.name]) for c in candidates], 0.02)
    return [{"name": c.name, "cause": c.cause} for c in candidates], rows


def test_a_refuted_value_hypothesis_is_withdrawn_when_the_order_is_confirmed():
    # commits_unshuffled: an ordinary burst named first; masking it changed nothing, shuffling removed spikes
    burst = {"time": "2015-12-22", "kind": "bad_value"}
    findings = [finding("bad_values", 17, [burst]), finding("order", 17), {"cause": "note", "sentence": "checked"}]
    candidates, rows = run(
        {"mask_bad_values": ("bad_values", 17, 2.50), "shuffle": ("order", 11, 2.54),
         "mask_bad_values+shuffle": ("bad_values+order", 0, 2.52)}
    )  # fmt: skip
    final = final_findings(findings, candidates, rows, 0.02)
    assert [(f["cause"], f.get("advice")) for f in final[:2]] == [("order", "fix order"), ("note", None)]
    assert final[0]["verdict"] == CONFIRMED and final[1]["refuted"] == "bad_values" and final[1]["anomalies"] == []
    assert "withdrawn: refuted by the runs (mask_bad_values: spikes 17 -> 17" in final[1]["sentence"]
    assert final[2] == {"cause": "note", "sentence": "checked"}


def test_a_strong_hypothesis_stays_when_no_remedy_passed_and_a_weak_one_is_withdrawn():
    candidates, rows = run({"shuffle": ("order", 0, 5.1)})  # shuffling removed the spikes but doubled the MAE
    assert verdicts(["order"], candidates, rows, 0.02)["order"][0] == REFUTED
    strong = final_findings([finding("order", 12)], candidates, rows, 0.02)
    assert strong[0]["cause"] == "order" and strong[0]["verdict"] == REFUTED
    weak = final_findings([finding("order", 2)], candidates, rows, 0.02)
    assert weak[0]["advice"] is None and "it rested on under 3 spikes" in weak[0]["sentence"]


def test_two_hypotheses_needed_together_are_both_confirmed():
    candidates, rows = run({"a": ("order", 17, 2.5), "b": ("last_batch", 17, 2.5), "a+b": ("order+last_batch", 0, 2.5)})
    said = verdicts(["order", "last_batch"], candidates, rows, 0.02)
    assert said["order"][0] == said["last_batch"][0] == CONFIRMED


def test_a_remedy_combining_a_withdrawn_hypothesis_may_not_win():
    outcomes = {"mask_bad_values": ("bad_values", 17, 2.50), "shuffle": ("order", 11, 2.54),
                "mask_bad_values+shuffle": ("bad_values+order", 0, 2.52)}  # fmt: skip
    candidates, rows = run(outcomes)
    final = final_findings([finding("bad_values", 17), finding("order", 17)], candidates, rows, 0.02)
    blocked = withdrawn_combinations(final, candidates)
    assert blocked == {"mask_bad_values+shuffle": "combines bad values, refuted on its own and withdrawn"}
    first = [Candidate(name, cause, {name: True}, name) for name, (cause, _, _) in outcomes.items()]
    results = {
        n: {"spikes": [{}] * s, "recorder": {"end_val_mae": m}, "wall_s": 1.0} for n, (_, s, m) in outcomes.items()
    }
    _, winner = rank(PROBE, [(c, results[c.name]) for c in first], 0.02, blocked)
    assert winner.name == "shuffle"


def test_the_report_gives_a_verdict_for_a_remedy_of_another_cause_than_its_hypothesis():
    # a non-finite loss named the values; the outlier clip tried beside the masking answers "bad_values"
    from lightning_lstm.doctor.options import DoctorOptions
    from lightning_lstm.doctor.report import report_markdown

    candidates, rows = run({"mask_nonfinite": ("nonfinite", 0, 1.0), "outliers_iqr": ("bad_values", 0, 1.0)})
    summary = {"command": "", "probe_epochs": 3, "jobs": 1, "wall_s": 9.0, "estimate_s": 8.0,
               "findings": [finding("nonfinite", 17)], "candidates": candidates, "winner": None}  # fmt: skip
    report = report_markdown(summary, rows, None, PROBE, None, DoctorOptions())
    assert "- **bad values**: confirmed by the runs (outliers_iqr: spikes 17 -> 0" in report


def test_sentinels_are_never_withdrawn_and_the_winners_hypothesis_leads():
    from lightning_lstm.doctor.verdicts import winner_first

    sentinel = {**finding("bad_values", 0, [{"time": "2013-03-14 23:00:00", "kind": "bad_value"}]), "sentinels": True}
    candidates, rows = run({"mask_bad_values": ("bad_values", 17, 2.50), "shuffle": ("order", 3, 2.40)})
    final = final_findings([sentinel, finding("order", 17)], candidates, rows, 0.02)
    kept = {f["cause"]: f for f in final if f.get("advice")}
    assert kept["bad_values"]["verdict"] == REFUTED and kept["bad_values"]["anomalies"]  # refuted, still advised
    # msft_unscaled: both confirmed, the scaling won: its hypothesis is named first
    candidates, rows = run({"mask_bad_values": ("bad_values", 5, 2.0), "scale": ("unscaled", 1, 0.8)})
    final = final_findings([finding("bad_values", 8), finding("unscaled", 0)], candidates, rows, 0.02)
    assert [f["verdict"] for f in final] == [CONFIRMED, CONFIRMED]
    assert [f["cause"] for f in winner_first(final, "unscaled", 0.02)] == ["unscaled", "bad_values"]
    assert [f["cause"] for f in winner_first(final, None, 0.02)] == ["bad_values", "unscaled"]
    # a combined winner: its parts in the order of their own remedies' validation MAE (scaling's 0.8 before 2.0)
    assert [f["cause"] for f in winner_first(final, "bad_values+unscaled", 0.02)] == ["unscaled", "bad_values"]
    close = [{**final[0], "best_val_mae": 0.805}, final[1]]  # within the tolerance: the diagnosis' order stays
    assert [f["cause"] for f in winner_first(close, "bad_values+unscaled", 0.02)] == ["bad_values", "unscaled"]

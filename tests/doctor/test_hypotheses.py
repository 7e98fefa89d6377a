"""Issue 22, item 3 in the doctor: every hypothesis gets its own remedy within ``max_candidates`` before any variant,
heavy tails get a robust loss and batch noise a larger batch, and ``report.md`` says which hypotheses the runs
confirmed and which they refuted (and why a winner may count more spikes)."""

from __future__ import annotations

from lightning_lstm.doctor.options import DoctorOptions
from lightning_lstm.doctor.ranking import rank
from lightning_lstm.doctor.remedies import Candidate, candidates_for
from lightning_lstm.doctor.report import report_markdown
from lightning_lstm.spikes.causes import LR_KEY

CONTEXT = {"lr_max_seen": 3e-3, "last_batch_size": 8, "outliers": "none", "clip_effects": {}}


def finding(cause: str, overlay: dict, anomalies=()) -> dict:
    return {
        "cause": cause,
        "advice": f"fix {cause}",
        "overlay": overlay,
        "anomalies": list(anomalies),
        "sentence": cause,
        "confidence": 0.5,
    }


BAD = {"time": "2020-01-01", "kind": "bad_value"}
HYPOTHESES = [
    finding("bad_values", {"data.path": "masked.csv"}, [BAD]),
    finding("order", {"data.shuffle": True}),
    finding("heavy_tail", {"model.loss": "huber"}),
    finding("batch_noise", {"data.batch_size": 32}),
    finding("unscaled", {"data.scaler": "standard"}),
]


def test_each_hypothesis_gets_its_own_remedy_before_any_variant():
    effects = {"iqr": {"clipped": 3, "anomalies": 1}}
    names = [c.name for c in candidates_for(HYPOTHESES, {**CONTEXT, "clip_effects": effects}, None, 6)]
    assert names == ["mask_bad_values", "shuffle", "huber_loss", "batch_32", "scale", "outliers_iqr"]
    names = [c.name for c in candidates_for(HYPOTHESES, CONTEXT, None, 20)]
    assert names[5:] == ["l1_loss", "batch_32+lr_0.006", "mask_bad_values+shuffle"]  # variants in the findings' order


def test_batch_noise_is_tried_with_and_without_the_learning_rate_scaled():
    found = candidates_for([finding("batch_noise", {"data.batch_size": 32})], CONTEXT, None, 6)
    assert [c.overlay for c in found] == [{"data.batch_size": 32}, {"data.batch_size": 32, LR_KEY: 0.006}]
    assert all(c.cause == "batch_noise" for c in found)


def test_a_heavy_tail_is_tried_with_huber_and_l1_and_never_masked():
    found = candidates_for([finding("heavy_tail", {"model.loss": "huber"})], CONTEXT, None, 6)
    assert [(c.name, c.overlay) for c in found] == [
        ("huber_loss", {"model.loss": "huber"}),
        ("l1_loss", {"model.loss": "l1"}),
    ]
    assert "the peaks stay" in found[0].cost


def test_the_same_overlay_is_tried_once():
    twice = [finding("learning_rate", {LR_KEY: 1e-3}), finding("nonfinite", {LR_KEY: 1e-3})]
    assert [c.name for c in candidates_for(twice, CONTEXT, None, 6)] == ["lr_0.001"]


def _result(spikes: int, mae: float) -> dict:
    return {"spikes": [{}] * spikes, "recorder": {"end_val_mae": mae}, "wall_s": 1.0}


def test_the_report_says_which_hypotheses_the_runs_confirmed_and_refuted():
    probe = {"spikes": [{}] * 8, "recorder": {"steps": list(range(50)), "end_val_mae": 1.0}, "wall_s": 2.0}
    found = candidates_for(HYPOTHESES[1:], CONTEXT, None, 3)  # shuffle, huber_loss, batch_32: unscaled left out
    found.append(Candidate("shuffle+huber_loss", "order+heavy_tail", {"data.shuffle": True, "model.loss": "huber"}, ""))
    results = {
        "shuffle": _result(8, 1.0),
        "huber_loss": _result(12, 0.6),
        "batch_32": _result(9, 1.05),
        "shuffle+huber_loss": _result(2, 0.7),
    }
    rows, winner = rank(probe, [(c, results[c.name]) for c in found], 0.02)
    summary = {
        "command": "",
        "probe_epochs": 3,
        "jobs": 1,
        "wall_s": 9.0,
        "estimate_s": 8.0,
        "findings": HYPOTHESES[1:],
        "candidates": [{"name": c.name, "cause": c.cause, "overlay": c.overlay} for c in found],
        "winner": winner.name,
        "fixed_yaml": "out/fixed.yaml",
    }
    report = report_markdown(summary, rows, winner, probe, None, DoctorOptions())
    assert "## Hypotheses and what the runs said" in report
    assert "- **order**: refuted by the runs (shuffle: spikes 8 -> 8, val MAE +0.0%)." in report
    assert "- **heavy tail**: confirmed by the runs (huber_loss: spikes 8 -> 12, val MAE -40.0%)." in report
    assert "- **batch noise**: refuted by the runs (batch_32: spikes 8 -> 9, val MAE +5.0%, refused: validation" in (
        report
    )
    assert "- **unscaled**: not tried (over `doctor.max_candidates`)." in report
    assert "- **order + heavy tail** together: shuffle+huber_loss: spikes 8 -> 2, val MAE -30.0%." in report
    assert winner.name == "huber_loss"
    assert "`huber_loss` has more spikes than the probe (12 against 8) and a validation MAE 40.0% lower" in report


def test_order_is_also_tried_with_window_norm_last_when_windows_keep_their_level():
    order = [finding("order", {"data.shuffle": True})]
    found = candidates_for(order, {**CONTEXT, "window_norm": "none"}, None, 6)
    assert [(c.name, c.overlay) for c in found] == [
        ("shuffle", {"data.shuffle": True}),
        ("shuffle+window_norm_last", {"data.shuffle": True, "data.window_norm": "last"}),
    ]
    assert [c.name for c in candidates_for(order, {**CONTEXT, "window_norm": "last"}, None, 6)] == ["shuffle"]


def test_a_larger_batch_runs_as_many_optimizer_steps_as_the_probe():
    from lightning_lstm.doctor.remedies import epochs_factor
    from lightning_lstm.spikes.causes import BATCH_GROWTH

    found = candidates_for([finding("batch_noise", {"data.batch_size": 32})], CONTEXT, None, 6)
    assert [epochs_factor(c) for c in found] == [BATCH_GROWTH, BATCH_GROWTH]
    assert all(f"{BATCH_GROWTH}x the epochs" in c.what for c in found)
    others = candidates_for(HYPOTHESES, CONTEXT, None, 9)
    assert {c.name: epochs_factor(c) for c in others if "batch" not in c.name} == dict.fromkeys(
        [c.name for c in others if "batch" not in c.name], 1
    )

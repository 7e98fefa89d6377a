"""diagnose(): each rule speaks on a constructed spike pattern, and says nothing stands out on isolated spikes."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from lightning_lstm.spikes.diagnosis import RunContext, diagnose
from lightning_lstm.spikes.records import SpikeRecord

STEPS_PER_EPOCH = 100


def window(window_id: int, start: str = "2021-03-01", series: str = "co2", input_start: str = "2021-01-01") -> dict:
    return {
        "window_id": window_id,
        "series": series,
        "input_start": input_start,
        "target_start": start,
        "target_end": "2021-03-08",
        "loss": 12.5,
    }


def spike(epoch: int, batch_idx: int, **overrides) -> SpikeRecord:
    """A plain finite loss spike with no gradient spike at a low, constant learning rate."""
    fields = {
        "epoch": epoch,
        "global_step": epoch * STEPS_PER_EPOCH + batch_idx,
        "batch_idx": batch_idx,
        "batches_in_epoch": STEPS_PER_EPOCH,
        "loss": 5.0,
        "baseline": 0.5,
        "score": 12.0,
        "threshold": 6.0,
        "grad_norm": 0.8,
        "grad_score": 0.3,
        "grad_spike": False,
        "lr": 1e-3,
        "batch_size": 32,
        "nominal_batch_size": 32,
        "nonfinite": False,
        "skipped": False,
        "top_windows": [window(1000 + 97 * epoch + batch_idx, start=f"{2000 + epoch}-{1 + batch_idx % 12:02d}-01")],
    }
    fields.update(overrides)
    return SpikeRecord(**fields)


@pytest.fixture
def context() -> RunContext:
    return RunContext(
        num_epochs_run=5,
        steps_per_epoch=STEPS_PER_EPOCH,
        shuffle=True,
        drop_last=False,
        last_batch_size=7,
        nominal_batch_size=32,
        gradient_clip_val=None,
        outliers="none",
        lr_max_seen=1e-3,
        lr_initial=1e-3,
        total_steps=5 * STEPS_PER_EPOCH,
    )


def text(sentences: list[str]) -> str:
    return " ".join(sentences)


def test_no_spikes_is_one_sentence(context: RunContext) -> None:
    assert diagnose([], context) == ["No loss spikes were detected in 5 epoch(s) (500 steps)."]


def test_scattered_unrelated_spikes_are_reported_as_nothing_standing_out(context: RunContext) -> None:
    spikes = [spike(0, 10), spike(1, 40), spike(3, 77, grad_spike=True)]
    (sentence,) = diagnose(spikes, context)
    assert "nothing stands out" in sentence and "no change is suggested" in sentence


def test_recurring_windows_without_an_outlying_value_get_no_clipping_advice(context: RunContext) -> None:
    hard = [window(4242, start="2019-07-14", input_start="2019-05-01")]
    spikes = [spike(e, b, top_windows=hard) for e, b in ((0, 5), (1, 61), (2, 33))] + [spike(3, 80)]
    out = text(diagnose(spikes, context))
    assert "3 of 4 spikes recur on the same windows in 3 epochs" in out
    assert "co2 2019-05-01 to 2021-03-08" in out  # the whole window: inputs and targets
    assert "clipping outliers would not help" in out and "nothing stands out" in out  # a note, no advice


def test_recurring_batch_index_without_shuffle_suggests_shuffling(context: RunContext) -> None:
    context = replace(context, shuffle=False, outliers="quantile")
    spikes = [spike(e, 17, top_windows=[]) for e in range(3)]
    out = text(diagnose(spikes, context))
    assert "batches 17 of each epoch" in out and "`data.shuffle: true`" in out and "(confidence 0.9" in out


def test_same_batch_index_with_shuffle_on_is_not_recurrence(context: RunContext) -> None:
    spikes = [spike(e, 17) for e in range(3)]  # different windows each epoch
    (sentence,) = diagnose(spikes, context)
    assert "nothing stands out" in sentence
    assert "recur at the same place" in text(diagnose(spikes, replace(context, shuffle=False)))


def test_only_gradient_led_bursts_suggest_a_clip_from_the_observed_norms(context: RunContext) -> None:
    context = replace(context, grad_norm_quantiles={"q50": 0.5, "q95": 1.5, "q100": 41.0})
    lone = [spike(e, 10 + 20 * e, grad_spike=True, grad_norm=40.0 + e) for e in range(3)]
    assert "gradient_clip_val" not in text(diagnose(lone, context))  # normal steps after each: the batch's doing
    bursts = [
        spike(e, 10 + i, grad_spike=i == 0, grad_norm=40.0 if i == 0 else 1.0) for e in range(2) for i in range(3)
    ]
    assert "Set `trainer.gradient_clip_val: 1.5` (the 95th percentile" in text(diagnose(bursts, context))
    assert "gradient_clip_val" not in text(diagnose(bursts, replace(context, gradient_clip_val=5.0)))


def test_spikes_on_the_last_partial_batch_suggest_drop_last(context: RunContext) -> None:
    spikes = [spike(e, STEPS_PER_EPOCH - 1, batch_size=7) for e in range(3)]
    out = text(diagnose(spikes, context))
    assert "`data.drop_last: true`" in out and "only 7 of 32 windows" in out
    assert "drop_last" not in text(diagnose(spikes, replace(context, drop_last=True)))
    full = [spike(e, STEPS_PER_EPOCH - 1) for e in range(3)]  # last but full batches
    assert "drop_last" not in text(diagnose(full, context))


def test_spikes_right_after_lr_increases_suggest_a_lower_lr(context: RunContext) -> None:
    context = replace(context, lr_increased_steps=[50, 250, 400], lr_max_seen=3e-3)
    spikes = [spike(0, 55), spike(2, 60), spike(4, 3), spike(1, 90)]
    out = text(diagnose(spikes, context))
    assert "3 of 4 spikes came within 20 steps of a learning-rate increase" in out
    assert "`model.optimizer.init_args.lr`" in out


def test_spikes_at_a_high_constant_lr_suggest_a_lower_lr(context: RunContext) -> None:
    context = replace(context, lr_max_seen=0.05, lr_initial=0.05)
    spikes = [spike(e, 30 + e, lr=0.05) for e in range(3)]
    assert "at a high learning rate (0.05)" in text(diagnose(spikes, context))
    low = [spike(e, 30 + e, lr=1e-3) for e in range(3)]
    assert "init_args.lr" not in text(diagnose(low, replace(context, lr_max_seen=1e-3, lr_initial=1e-3)))


def test_a_single_nonfinite_loss_is_conclusive(context: RunContext) -> None:
    out = diagnose([spike(2, 5, loss=math.nan, score=math.inf, nonfinite=True, skipped=True)], context)
    assert len(out) == 2
    assert "non-finite loss (NaN or inf)" in out[1] and "those updates were skipped" in out[1]
    assert "the optimizer diverged" in out[1] and "Lower `model.optimizer.init_args.lr`" in out[1]


@pytest.mark.parametrize(
    "overrides",
    [
        {"grad_spike": True, "grad_norm": 50.0},
        {"batch_idx": STEPS_PER_EPOCH - 1, "batch_size": 7},
        {"lr": 0.05},
        {"top_windows": [window(4242)]},
    ],
)
def test_one_isolated_spike_is_weak_evidence_for_every_rule(context: RunContext, overrides: dict) -> None:
    context = replace(context, lr_max_seen=0.05, lr_increased_steps=[200])
    overrides = {"batch_idx": 3, **overrides}
    (sentence,) = diagnose([spike(2, **overrides)], context)
    assert "nothing stands out" in sentence


def test_a_pattern_covering_under_half_of_the_spikes_is_weak(context: RunContext) -> None:
    grad = [spike(e, 10, grad_spike=True) for e in range(3)]
    other = [spike(e, 50 + e) for e in range(4)]
    (sentence,) = diagnose(grad + other, context)
    assert "nothing stands out" in sentence and "gradient_clip_val" not in sentence


def test_spike_record_dict_round_trip_through_json() -> None:
    record = spike(1, 99, loss=math.inf, nonfinite=True, grad_norm=None, grad_score=None, batches_in_epoch=None)
    again = SpikeRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert again == record
    assert again.position_in_epoch is None
    assert spike(0, 50).position_in_epoch == 0.5
    assert spike(0, 99, batch_size=7).is_last_batch


def test_spike_record_rejects_malformed_input() -> None:
    data = spike(0, 1).to_dict()
    with pytest.raises(ValueError, match="unknown keys"):
        SpikeRecord.from_dict({**data, "extra": 1})
    with pytest.raises(ValueError, match="missing"):
        SpikeRecord.from_dict({k: v for k, v in data.items() if k != "lr"})
    with pytest.raises(ValueError, match="top_windows"):
        spike(0, 1, top_windows=[{"window_id": 1}])

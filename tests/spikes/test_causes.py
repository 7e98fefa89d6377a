"""The rules name the cause that was built into the spikes, stay quiet on healthy ones, and never advise a no-op."""

from __future__ import annotations

from dataclasses import replace

from lightning_lstm.spikes.diagnosis import find_causes
from lightning_lstm.spikes.records import LocalAnomaly, RunContext, SpikeRecord

CONTEXT = RunContext(
    num_epochs_run=6,
    steps_per_epoch=25,
    shuffle=True,
    drop_last=False,
    last_batch_size=8,
    nominal_batch_size=64,
    gradient_clip_val=1.0,
    outliers="none",
    lr_max_seen=3e-3,
    lr_initial=3e-3,
    total_steps=150,
    grad_norm_quantiles={"q50": 0.015, "q90": 0.04, "q95": 0.07, "q100": 0.239},
    clip_engaged_steps=0,
    outliers_clipped=0,
    window_width=56,
)


def spike(epoch: int, batch: int, windows=(), grad_norm=0.02, grad_spike=False, size=64, lr=3e-3, loss=1.0):
    top = [
        {"window_id": w, "series": "co2", "input_start": "x", "target_start": "y", "target_end": "z", "loss": 1.0}
        for w in windows
    ]
    return SpikeRecord(
        epoch=epoch,
        global_step=epoch * 25 + batch,
        batch_idx=batch,
        batches_in_epoch=25,
        loss=loss,
        baseline=0.1,
        score=9.0,
        threshold=6.0,
        grad_norm=grad_norm,
        grad_score=9.0 if grad_spike else 1.0,
        grad_spike=grad_spike,
        lr=lr,
        batch_size=size,
        nominal_batch_size=64,
        nonfinite=loss != loss or loss == float("inf"),
        skipped=False,
        top_windows=top,
    )


def advice(findings) -> list[str]:
    return [f.advice for f in findings if f.advice]


def test_healthy_small_norms_never_get_a_lower_clip():
    # The default CO2 run: gradient-norm "spikes" of 0.24 (clip 1.0 never engaged) on the small last batch.
    spikes = [spike(e, 24, grad_norm=0.239, grad_spike=True, size=8) for e in (2, 4, 5)]
    findings = find_causes(spikes, CONTEXT)
    assert [f.cause for f in findings if f.advice] == ["last_batch"]
    assert not any("gradient_clip_val" in a for a in advice(findings))
    isolated = [spike(e, b, grad_norm=0.239, grad_spike=True) for e, b in ((1, 3), (3, 11), (5, 17))]
    findings = find_causes(isolated, CONTEXT)  # single grad spikes, normal steps after each: the batch's doing
    assert advice(findings) == []
    assert any("never engaged" in f.sentence for f in findings)  # reported, with no advice attached


def test_a_clip_is_taken_from_the_norms_only_for_bursts_it_would_stop():
    context = replace(CONTEXT, gradient_clip_val=None, grad_norm_quantiles={"q50": 0.2, "q95": 0.6, "q100": 2.2})
    bursts = [
        spike(e, b + i, grad_norm=1.8 if i == 0 else 0.5, grad_spike=i == 0)
        for e, b in ((2, 5), (4, 9))
        for i in range(3)
    ]
    (first, *_) = find_causes(bursts, context)
    assert first.cause == "gradients" and first.overlay == {"trainer.gradient_clip_val": 0.6}
    assert "2 burst(s)" in first.sentence and "9x or more the median" in first.sentence
    wide = replace(context, grad_norm_quantiles={"q50": 0.2, "q95": 1.2, "q100": 2.2})  # 5% of steps that high
    assert not any("gradient_clip_val" in a for a in advice(find_causes(bursts, wide)))
    clipped = replace(context, gradient_clip_val=1.0)  # clipping already bounded those updates: no lower clip
    assert not any("gradient_clip_val" in a for a in advice(find_causes(bursts, clipped)))


def test_unshuffled_ramps_say_shuffle_and_that_clipping_would_cut_real_values():
    context = replace(CONTEXT, shuffle=False, steps_per_epoch=108, clip_effects={"quantile": {"clipped": 42}})
    spikes = [spike(e, b, windows=[b * 16]) for e in (1, 2, 3) for b in (59, 60, 70)]
    first = find_causes(spikes, context)[0]
    assert first.cause == "order" and first.overlay == {"data.shuffle": True}
    assert "batches 59, 60, 70 of each epoch" in first.sentence
    assert "clipping outliers would not help, and `data.outliers: quantile` would cut 42 real" in first.sentence


def test_bad_values_come_before_the_order_they_recur_in():
    bad = LocalAnomaly("bad_value", 700, "co2", "co2", "1971-08-28", 0.4, 325.6, 325.9, 242.0, spikes=6)
    context = replace(
        CONTEXT,
        shuffle=False,
        anomalies=[bad],
        clip_effects={"iqr": {"clipped": 1, "anomalies": 1}, "quantile": {"clipped": 16, "anomalies": 1}},
    )
    spikes = [spike(e, b, windows=[680]) for e in (1, 2, 3) for b in (3, 10)]
    findings = find_causes(spikes, context)
    # Issue 22: order stays a hypothesis (tried by the doctor) even when the bad value explains the spikes first.
    assert [f.cause for f in findings if f.advice] == ["bad_values", "order"]
    assert "co2 = 0.4 at 1971-08-28 is 0.12% of the median" in findings[0].sentence
    assert "[1971-08-28]" in findings[0].advice and "`data.outliers: iqr` would clip them too, and 0 other" in (
        findings[0].advice
    )


def test_isolated_spikes_get_no_advice():
    spikes = [spike(1, 3, windows=[10]), spike(4, 17, windows=[900])]
    assert advice(find_causes(spikes, CONTEXT)) == []
    assert advice(find_causes([], CONTEXT)) == []


def test_unscaled_data_are_named_without_spikes():
    context = replace(CONTEXT, scaler="none", target_median=328.8, target_std=10.8, final_loss=1.08e5)
    (first,) = find_causes([], context)
    assert first.cause == "unscaled" and first.overlay == {"data.scaler": "standard", "data.window_norm": "last"}
    assert "still 9.3e+02x their variance" in first.sentence
    assert find_causes([], replace(context, scaler="standard")) == []


def test_a_nonfinite_loss_names_the_values_in_its_windows():
    sentinel = LocalAnomaly("bad_value", 500, "co2", "co2", "1967-10-28", 1e30, 320.7, 321.0, 1e27, spikes=4)
    context = replace(CONTEXT, anomalies=[sentinel])
    spikes = [spike(e, 3, windows=[480], loss=float("inf")) for e in range(4)]
    first = find_causes(spikes, context)[0]
    assert first.cause == "nonfinite" and first.anomalies == [sentinel] and "[1967-10-28]" in first.advice
    diverged = find_causes([spike(e, 3, windows=[10], loss=float("nan")) for e in range(2)], CONTEXT)[0]
    assert "the optimizer diverged" in diverged.sentence and diverged.overlay == {"model.optimizer.init_args.lr": 3e-4}


def test_outlier_clipping_that_clipped_nothing_is_reported():
    context = replace(CONTEXT, outliers="iqr", outliers_clipped=0)
    spikes = [spike(e, b, windows=[b]) for e, b in ((0, 3), (2, 9), (4, 17))]
    assert any("`data.outliers: iqr` clipped 0 training values" in f.sentence for f in find_causes(spikes, context))


def test_a_high_learning_rate_is_named_when_the_validation_error_diverges():
    context = replace(CONTEXT, lr_max_seen=2.0, lr_initial=2.0, val_mae_best=2.41, val_mae_final=5.49)
    spikes = [spike(7, 12, windows=[5], lr=2.0), spike(7, 19, windows=[400], lr=2.0)]
    (first, *_) = find_causes(spikes, context)
    assert first.cause == "learning_rate" and "rose from its best, 2.41, to 5.49" in first.sentence
    assert advice(find_causes(spikes, replace(context, val_mae_final=2.5))) == []  # two spikes alone: too few


def test_unshuffled_spikes_where_an_epoch_wraps_to_the_series_start_are_order():
    context = replace(CONTEXT, shuffle=False, steps_per_epoch=97, num_epochs_run=4, total_steps=388)
    spikes = [spike(1, 47), spike(2, 46)] + [spike(3, b) for b in range(6)]  # the restart of epoch 3, seen once
    first = find_causes(spikes, context)[0]
    assert first.cause == "order" and first.explained == 8
    assert find_causes(spikes, replace(context, shuffle=True))[0].cause != "order"


def _note(column: str, value: float, beyond: float, row: int = 500) -> dict:
    return {"column": column, "series": "s", "row": row, "time": f"2013-03-{row % 28 + 1:02d} 10:00:00",
            "value": value, "reference": 1017.0, "why": "far outside its training range", "beyond": beyond}  # fmt: skip


def test_sentinels_far_beyond_their_column_are_named_without_spikes():
    notes = [_note("pressure_hpa", 9999.9, 180.0, 500), _note("pressure_hpa", 9999.9, 180.0, 900)]
    notes.append(_note("volume", 5.9e8, 1.8, 1200))  # a real peak just outside the range: a data note only
    (first,) = find_causes([], replace(CONTEXT, data_notes=notes))
    assert first.cause == "bad_values" and first.sentinels and first.explained == 0
    assert [a.row for a in first.anomalies] == [500, 900] and {a.kind for a in first.anomalies} == {"bad_value"}
    assert "2013-03-25 10:00:00" in first.advice and "180 range widths beyond" in first.sentence
    assert find_causes([], replace(CONTEXT, data_notes=notes[2:])) == []  # nothing 5 widths out: no advice


def test_sentinels_add_no_second_bad_values_finding():
    bad = LocalAnomaly("bad_value", 120, "s", "co2", "t120", 0.4, 330.0, 330.0, 900.0, spikes=4)
    spikes = [spike(e, b, windows=[100]) for e, b in [(1, 3), (2, 9), (3, 14), (4, 2)]]
    context = replace(CONTEXT, anomalies=[bad], data_notes=[_note("co2", 0.4, 7.6, 120), _note("p", -999, 40, 700)])
    findings = [f for f in find_causes(spikes, context) if f.advice]
    assert [f.cause for f in findings] == ["bad_values"] and not findings[0].sentinels

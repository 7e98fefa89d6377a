"""Issue 22, items 3: the rules read the intervention test (``SpikeRecord.explained_share``, ``LocalAnomaly.explains``
and ``kind``), name a value only when replacing it removed ``NAMED_SHARE`` of a spike's excess loss, keep order and
scaling as hypotheses whatever fires first, and name heavy tails and batch noise. Records built by hand, as the
callback writes them; the last test reads the new context fields from a real Trainer fit."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import lightning.pytorch as pl
import numpy as np
import torch

from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.model.module import LSTMForecaster
from lightning_lstm.spikes import LossSpikeCallback
from lightning_lstm.spikes.bad_values import target_distribution, target_level
from lightning_lstm.spikes.causes import HEAVY_TAIL
from lightning_lstm.spikes.diagnosis import diagnose, find_causes
from lightning_lstm.spikes.evidence import NAMED_SHARE, explained_by, loss_dispersion
from lightning_lstm.spikes.records import LocalAnomaly, RunContext
from tests.spikes.test_causes import CONTEXT, spike

UNSHUFFLED = replace(CONTEXT, shuffle=False)


def scored(epoch: int, batch: int, windows=(), share: float = 0.0, size: int = 64):
    """A spike the intervention test scored: ``share`` is the largest share one value's replacement removed."""
    return replace(spike(epoch, batch, windows=windows, size=size), explained_share=share)


def value(kind: str, row: int, column: str = "co2", explains: dict | None = None, spikes: int = 6) -> LocalAnomaly:
    return LocalAnomaly(kind, row, "co2", column, f"t{row}", 0.4, 325.6, 325.9, 242.0, spikes, explains or {})


def causes(findings) -> list[str]:
    return [f.cause for f in findings if f.advice]


def test_a_value_is_named_only_when_its_replacement_removes_the_named_share():
    spikes = [scored(e, b, windows=[680], share=0.8) for e in (1, 2, 3) for b in (3, 10)]
    steps = {s.global_step: 0.8 for s in spikes}
    culprit = value("bad_value", 700, explains=steps)
    ordinary = value("bad_value", 705, column="pres", explains={s.global_step: 0.02 for s in spikes})
    findings = find_causes(spikes, replace(CONTEXT, anomalies=[culprit, ordinary]))
    first = findings[0]
    assert first.cause == "bad_values" and [a.row for a in first.anomalies] == [700]
    assert f"removed at least {NAMED_SHARE:.0%} of the excess loss of 6 spike(s) (up to 80%" in first.sentence


def test_json_string_keys_of_explains_are_read_too():
    record = scored(1, 3, windows=[680], share=0.5)
    assert explained_by(value("bad_value", 700, explains={str(record.global_step): 0.5}), record) == 0.5
    assert explained_by(value("bad_value", 700), record) == 0.0


def test_ordinary_readings_that_explain_nothing_leave_the_order_named_first():
    # Issue 22's "one rule hides the real cause": whole-unit pressure readings in every spike window, unshuffled.
    spikes = [scored(e, b, windows=[680], share=0.03) for e in (1, 2, 3) for b in (3, 10)]
    readings = [
        value("bad_value", 690 + i, column="pres", explains={s.global_step: 0.03 for s in spikes}) for i in (0, 1)
    ]
    findings = find_causes(spikes, replace(UNSHUFFLED, anomalies=readings))
    assert causes(findings)[0] == "order" and "bad_values" not in causes(findings)
    assert f"no single value of their windows (e.g. co2 x to z) removes {NAMED_SHARE:.0%}" in findings[0].sentence


def test_untested_spikes_keep_naming_the_values_inside_their_windows():
    spikes = [spike(e, b, windows=[680]) for e in (1, 2, 3) for b in (3, 10)]  # explained_share None: an old file
    findings = find_causes(spikes, replace(CONTEXT, anomalies=[value("bad_value", 700)]))
    assert causes(findings) == ["bad_values"] and findings[0].anomalies[0].row == 700


def test_order_stays_a_hypothesis_when_bad_values_explain_the_recurring_spikes():
    spikes = [scored(e, b, windows=[680], share=0.9) for e in (1, 2, 3) for b in (3, 10)]
    culprit = value("bad_value", 700, explains={s.global_step: 0.9 for s in spikes})
    findings = find_causes(spikes, replace(UNSHUFFLED, anomalies=[culprit]))
    assert causes(findings) == ["bad_values", "order"]
    assert findings[1].overlay == {"data.shuffle": True} and "other causes may add to them" in findings[1].sentence
    shuffled = find_causes(spikes, replace(CONTEXT, anomalies=[culprit]))
    assert causes(shuffled) == ["bad_values"]  # shuffled: no order to try


def test_peaks_are_never_bad_values():
    spikes = [scored(e, b, windows=[680], share=0.7) for e in (1, 2, 3) for b in (3, 10)]
    peak = value("peak", 700, explains={s.global_step: 0.7 for s in spikes})
    findings = find_causes(spikes, replace(CONTEXT, anomalies=[peak], loss="huber", target_columns=["co2"]))
    assert "bad_values" not in causes(findings) and all(not f.anomalies for f in findings)


def test_heavy_tail_under_mse_advises_a_robust_loss_and_counts_what_clipping_would_cut():
    spikes = [scored(e, b, windows=[680], share=0.7) for e in (1, 2, 3) for b in (3, 10)]
    peak = value("peak", 700, explains={s.global_step: 0.7 for s in spikes})
    effects = {"quantile": {"clipped": 173, "anomalies": 0}, "iqr": {"clipped": 410, "anomalies": 0}}
    context = replace(CONTEXT, anomalies=[peak], loss="mse", target_columns=["co2"], clip_effects=effects)
    findings = find_causes(spikes, context)
    first = findings[0]
    assert first.cause == "heavy_tail" and first.overlay == {"model.loss": "huber"} and first.explained == 6
    assert "clipping them instead (`data.outliers: quantile`) would cut 173 real training values" in first.sentence
    assert first.anomalies == []  # real peaks: described, never handed to masking or counted as named bad values
    assert "heavy_tail" not in causes(find_causes(spikes, replace(context, loss="huber")))
    covariate = replace(peak, column="pres")
    assert "heavy_tail" not in causes(find_causes(spikes, replace(context, anomalies=[covariate])))
    weak = replace(peak, explains={s.global_step: NAMED_SHARE / 2 for s in spikes})
    assert "heavy_tail" not in causes(find_causes(spikes, replace(context, anomalies=[weak])))
    heavy = find_causes(spikes, replace(context, target_tail=4.5))[0]
    assert heavy.cause == "heavy_tail" and "lies 4.5 interquartile ranges from its median" in heavy.sentence
    # a target no heavier-tailed than a normal distribution (CO2, temperatures) has no real extremes to blame
    assert "heavy_tail" not in causes(find_causes(spikes, replace(context, target_tail=HEAVY_TAIL - 0.5)))


def test_the_target_tail_tells_a_normal_sample_from_a_heavy_tailed_one():
    rng = np.random.default_rng(0)
    normal, rain = rng.standard_normal((20_000, 1)), rng.pareto(1.5, (20_000, 1)) * (rng.random((20_000, 1)) < 0.4)
    for values, low, high in ((normal, 2.0, 2.6), (rain, HEAVY_TAIL, np.inf)):
        median, spread, tail = target_distribution(values.astype(np.float32), [(0, len(values))], [0])
        assert low <= tail <= high
        assert (median, spread) == target_level(values.astype(np.float32), [(0, len(values))], [0])


def test_batch_noise_at_different_batches_each_epoch_with_a_small_batch():
    places = [(1, 2), (1, 9), (2, 5), (2, 17), (3, 12), (3, 21)]
    spikes = [scored(e, b, windows=[100 * e + b], share=0.05, size=8) for e, b in places]
    small = replace(CONTEXT, nominal_batch_size=8)
    findings = find_causes(spikes, small)
    first = findings[0]
    assert first.cause == "batch_noise" and first.overlay == {"data.batch_size": 32}
    assert "6 different batch(es) in 3 epochs" in first.sentence and "only 8 windows" in first.sentence
    assert "batch_noise" not in causes(find_causes(spikes, CONTEXT))  # batch 64, no spread known
    noisy = find_causes(spikes, replace(CONTEXT, loss_dispersion=0.8))
    assert causes(noisy) == ["batch_noise"] and "spread by 80% of their median" in noisy[0].sentence
    explained = [replace(s, explained_share=0.9) for s in spikes]
    shares = {s.global_step: 0.9 for s in explained}
    culprit = replace(small, anomalies=[value("bad_value", 500, explains=shares)])
    assert "batch_noise" not in causes(find_causes(explained, culprit))  # a bad value explains them: not noise
    peak = find_causes(explained, replace(small, anomalies=[value("peak", 500, explains=shares)]))
    assert (
        causes(peak) == ["batch_noise"] and "only real, plausible values of the series explain them" in peak[0].sentence
    )


def test_spikes_recurring_at_one_place_are_order_not_batch_noise():
    spikes = [scored(e, b, windows=[680], share=0.0, size=8) for e in (1, 2, 3) for b in (3, 10)]
    findings = find_causes(spikes, replace(UNSHUFFLED, nominal_batch_size=8))
    assert causes(findings) == ["order"]


def test_unscaled_is_a_hypothesis_whenever_the_scaler_is_none():
    near_zero = replace(CONTEXT, scaler="none", target_median=0.5, target_std=1.0)  # no level, no wide spread
    findings = find_causes([], near_zero)
    assert causes(findings) == ["unscaled"] and findings[0].overlay == {"data.scaler": "standard"}
    assert findings[0].confidence == 0.4
    assert causes(find_causes([], replace(near_zero, target_median=None))) == ["unscaled"]
    assert "unscaled" not in causes(find_causes([], replace(near_zero, scaler="standard")))
    assert diagnose([], near_zero)[0].endswith("but the run shows a cause of poor training.")


def test_loss_dispersion_is_the_robust_spread_of_the_last_half_over_its_median():
    calm = [10.0] * 20 + [1.0, 1.1, 0.9] * 10
    assert abs(loss_dispersion(calm) - 1.4826 * 0.1) < 1e-9
    assert loss_dispersion([1.0] * 30) is None  # under 20 steps in the last half
    assert loss_dispersion([0.0] * 60) is None


def test_a_real_fit_fills_the_loss_the_targets_and_the_dispersion(tmp_path, sine_csv, one_thread):
    data = TimeSeriesDataModule(path=str(sine_csv), target_columns=["value"], lookback=8, horizon=2, batch_size=8)
    model = LSTMForecaster(
        horizon=2,
        hidden_size=4,
        num_layers=1,
        loss="mse",
        scheduler=None,
        optimizer=partial(torch.optim.AdamW, lr=1e-2),
    )
    spikes = LossSpikeCallback(window=20, warmup=10)
    trainer = pl.Trainer(
        default_root_dir=tmp_path,
        logger=False,
        callbacks=[spikes],
        max_epochs=2,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(model, data)
    context: RunContext = spikes.context
    assert context.loss == "mse" and context.target_columns == ["value"] and context.nominal_batch_size == 8
    assert context.loss_dispersion is not None and context.loss_dispersion > 0


def test_spikes_at_a_high_learning_rate_are_the_learning_rate_not_batch_noise():
    # co2_high_lr (SGD at lr 2.0, batch 64): a noisy loss, spikes at different batches; the learning rate takes them.
    places = [(6, 15), (6, 17), (7, 13), (7, 15), (12, 2)]
    spikes = [replace(scored(e, b, windows=[100 * e + b]), lr=2.0) for e, b in places]
    context = replace(CONTEXT, lr_max_seen=2.0, lr_initial=2.0, loss_dispersion=0.9)
    assert causes(find_causes(spikes, context)) == ["learning_rate"]


def test_hard_windows_that_spike_again_in_a_small_shuffled_batch_are_batch_noise():
    # sst_batch_8: shuffled batches of 8, most spikes on windows that spiked in an earlier epoch too
    places = [(1, 2), (1, 9), (2, 5), (2, 17), (3, 12), (3, 21)]
    spikes = [scored(e, b, windows=[100 + b % 2], share=0.05, size=8) for e, b in places]
    small = find_causes(spikes, replace(CONTEXT, nominal_batch_size=8))
    assert causes(small)[0] == "batch_noise" and "none recurring at one place," in small[0].sentence
    large = find_causes([replace(s, batch_size=64) for s in spikes], replace(CONTEXT, loss_dispersion=0.8))
    assert "batch_noise" not in causes(large)  # in a large batch the same hard windows are hard, real data

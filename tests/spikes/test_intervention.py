"""The intervention test: replacing one value re-scores a spike's windows; a value that carries the spike explains it,
a spike that no value carries is explained by none. Real data module, real Trainer, a tiny LSTM."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.model.module import LSTMForecaster
from lightning_lstm.spikes.evidence import NAMED_SHARE
from lightning_lstm.spikes.intervention import PatchedValues, interpolated
from tests.helpers import write_weekly_sine
from tests.spikes.test_loss_spikes import InjectedSpikes, events, spike_callback, text

DROP_ROW = 150  # a reading at 2% of its value, inside the training span (the first 70% of 400 rows)


def test_patched_values_gather_as_the_frame_does_and_leave_it_unchanged():
    values = np.arange(20, dtype=np.float32).reshape(10, 2)
    view = PatchedValues(values, row=3, column=1, value=99.0)
    rows = np.array([[2, 3, 4], [3, 4, 5]])  # (B, W), as the dataset gathers
    block = view[rows]  # (B, W, C)
    expected = values[rows].copy()
    expected[0, 1, 1] = expected[1, 0, 1] = 99.0
    assert np.array_equal(block, expected) and values[3, 1] == 7.0 and len(view) == 10


def test_the_replacement_is_the_neighbours_interpolation_untouched_by_one_adjacent_bad_value():
    column = np.array([1.0, 2.0, 3.0, 100.0, -999.0, 5.0, 6.0, 7.0, np.nan])
    assert interpolated(column, 4, 0, len(column)) == 0.5 * (3.0 + 6.0)  # medians of 3 rows each side
    assert interpolated(column, 7, 0, len(column)) == 5.0  # the right side is NaN only: the left one alone


def fit(tmp_path: Path, model: LSTMForecaster, actions: list[str], steps: int) -> tuple[pl.Trainer, object]:
    csv = write_weekly_sine(tmp_path / "sine.csv", steps=400, scale_rows={DROP_ROW: 0.02})
    data = TimeSeriesDataModule(
        path=str(csv), target_columns=["value"], lookback=8, horizon=2, batch_size=16, shuffle=False, window_norm="none"
    )
    spikes = spike_callback(actions=actions)
    trainer = pl.Trainer(
        default_root_dir=tmp_path, logger=TensorBoardLogger(tmp_path, name="run"), callbacks=[spikes],
        max_steps=steps, max_epochs=-1, limit_val_batches=0, num_sanity_val_steps=0, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1, deterministic=True,
    )  # fmt: skip
    trainer.fit(model, data)
    return trainer, spikes


def tiny(cls=LSTMForecaster, **kwargs) -> LSTMForecaster:
    torch.manual_seed(0)
    optimizer = partial(torch.optim.AdamW, lr=1e-2)
    return cls(horizon=2, hidden_size=4, num_layers=1, scheduler=None, optimizer=optimizer, **kwargs)


def test_a_dropped_reading_explains_its_spikes_and_is_named_with_its_share(tmp_path: Path, one_thread):
    trainer, spikes = fit(tmp_path, tiny(), ["log"], steps=120)  # host scoring in batches: weights a few steps newer
    holding = [r for r in spikes.records if any(0 <= DROP_ROW - w["window_id"] < 10 for w in r.top_windows)]
    assert holding, "the drop made no spike"
    assert max(r.explained_share or 0.0 for r in holding) >= NAMED_SHARE
    (drop,) = [a for a in spikes.context.anomalies if a.row == DROP_ROW and a.kind != "level_shift"]
    assert drop.kind == "bad_value" and max(drop.explains.values()) >= NAMED_SHARE
    assert set(drop.explains) <= {r.global_step for r in spikes.records}
    sentence = drop.describe("neighbouring days")
    assert "% of the median of the neighbouring days" in sentence and "explains " in sentence
    assert "% of the spike at step " in sentence
    # the data notes name the drop (and only it), in spikes.json and in TensorBoard
    report = json.loads((Path(trainer.logger.log_dir) / "spikes.json").read_text())
    assert [n["row"] for n in report["data_notes"]] == [DROP_ROW] and report["data_notes_total"] == 1
    assert any(s["explained_share"] is not None for s in report["spikes"])
    (notes,) = text(events(trainer.logger.log_dir), "spikes/data_notes")
    assert report["data_notes"][0]["time"] in notes


def test_a_spike_no_value_carries_is_explained_by_none(tmp_path: Path, one_thread):
    # The targets of the batches at these steps are shifted inside training_step: the data hold nothing, so the
    # windows re-scored as the data have them show no excess (None) or no value removes it. ``skip``: the weights
    # re-scored are exactly those of the spiking step.
    model = tiny(InjectedSpikes, spike_steps=(60, 90), shift=20.0)
    _, spikes = fit(tmp_path, model, ["log", "skip"], steps=100)
    injected = [r for r in spikes.records if r.global_step in (60, 90)]
    assert len(injected) == 2 and all(r.skipped for r in injected)
    assert all(r.explained_share is None or r.explained_share < NAMED_SHARE for r in injected)

"""The loss-spike callback, unchanged, on a quantile model's pinball loss: a spike planted in one window of one batch
is found at its step and named by that window (the per-window losses are the pinball loss averaged over H, T, Q)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import torch

from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.model.module import LSTMForecaster
from lightning_lstm.spikes import LossSpikeCallback

SPIKE, PLANTED = 30, 5  # the spiking global step, and the window of its batch whose targets are shifted
LEVELS = [0.1, 0.5, 0.9]


class OneWindowSpike(LSTMForecaster):
    """Adds 20 (scaled units) to the targets of one window of the batch at global step ``SPIKE``."""

    def training_step(self, batch, batch_idx):
        if self.trainer.global_step == SPIKE:
            y = batch["y"].clone()
            y[PLANTED] += 20.0
            batch = dict(batch, y=y)
            self.planted_id = int(batch["window_id"][PLANTED])
        return super().training_step(batch, batch_idx)


def test_a_spike_under_the_pinball_loss_is_found_and_named(tmp_path: Path, sine_csv: Path, one_thread) -> None:
    data = TimeSeriesDataModule(
        path=str(sine_csv), target_columns=["value"], lookback=8, horizon=2, batch_size=16, shuffle=False,
        window_norm="none",
    )  # fmt: skip
    model = OneWindowSpike(
        horizon=2, hidden_size=4, num_layers=1, scheduler=None, quantiles=LEVELS,
        optimizer=partial(torch.optim.AdamW, lr=1e-2),
    )  # fmt: skip
    spikes = LossSpikeCallback(window=20, warmup=10, actions=["log"])
    trainer = pl.Trainer(
        default_root_dir=tmp_path, max_steps=SPIKE + 2, limit_val_batches=0, num_sanity_val_steps=0, logger=False,
        callbacks=[spikes], enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        accelerator="cpu", devices=1, deterministic=True,
    )  # fmt: skip
    trainer.fit(model, data)

    assert [r.global_step for r in spikes.records] == [SPIKE]
    record = spikes.records[0]
    worst = record.top_windows[0]
    assert worst["window_id"] == model.planted_id  # named: the planted window, with its series and timestamps
    assert worst["series"] and worst["target_start"] and worst["loss"] > 5 * record.top_windows[1]["loss"]

    # Pinball averaged over H, T and Q: a target 20 above every quantile costs each level q * 20, so about 0.5 * 20
    # (MSE would give about 400, L1 about 20).
    assert 8.5 < worst["loss"] < 11.5

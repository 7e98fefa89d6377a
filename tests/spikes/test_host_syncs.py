"""No host read of a tensor value on the training hot path (``training_step`` to the update) outside logging steps.

On a GPU every such read (``item``, ``bool``, ``tolist``, ``cpu``, ``float``, ``numpy``) stalls the device queue; on
the CPU the same calls are counted by :class:`~lightning_lstm.runtime.host_syncs.HostSyncCounter`. A few seconds.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.model.module import LSTMForecaster
from lightning_lstm.runtime.host_syncs import HostSyncCounter
from lightning_lstm.spikes import LossSpikeCallback

STEPS, LOG_EVERY = 25, 10


def counted_fit(root: Path, csv: Path, spikes: LossSpikeCallback | None, **trainer_kwargs) -> HostSyncCounter:
    data = TimeSeriesDataModule(
        path=str(csv), target_columns=["value"], lookback=8, horizon=2, batch_size=16, shuffle=True, window_norm="none"
    )
    model = LSTMForecaster(
        horizon=2, hidden_size=4, num_layers=1, scheduler=None, optimizer=partial(torch.optim.AdamW, lr=1e-2)
    )
    counter = HostSyncCounter()
    callbacks = [counter, pl.callbacks.LearningRateMonitor()] + ([spikes] if spikes is not None else [])
    trainer = pl.Trainer(
        default_root_dir=root, callbacks=callbacks, max_steps=STEPS, limit_val_batches=0, num_sanity_val_steps=0,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1,
        log_every_n_steps=LOG_EVERY, gradient_clip_val=1.0, **trainer_kwargs,
    )  # fmt: skip
    trainer.fit(model, data)
    return counter


@pytest.mark.parametrize("actions", [["log"], ["log", "save_batch"]])
def test_no_host_sync_outside_logging_steps(tmp_path: Path, sine_csv: Path, one_thread, actions: list[str]):
    spikes = LossSpikeCallback(window=20, warmup=10, actions=actions, on_device=True)
    counter = counted_fit(tmp_path, sine_csv, spikes)
    quiet = [s for s in range(STEPS) if (s + 1) % LOG_EVERY and s != STEPS - 1]
    assert sorted(counter.per_step) == list(range(STEPS))  # every step's closure was watched
    assert counter.counts(quiet) == [0] * len(quiet), dict(counter.by_name)
    assert spikes.loss_detector.steps_seen == STEPS and spikes.history.size == STEPS  # all settled by the end


def test_host_detector_reads_its_steps_in_batches_off_the_hot_path(tmp_path: Path, sine_csv: Path, one_thread):
    """The CPU default (``on_device: null``): the pure-Python detector reads 32 steps at a time, after their updates."""
    spikes = LossSpikeCallback(window=20, warmup=10)
    counter = counted_fit(tmp_path, sine_csv, spikes)
    quiet = [s for s in range(STEPS) if (s + 1) % LOG_EVERY and s != STEPS - 1]
    assert counter.counts(quiet) == [0] * len(quiet), dict(counter.by_name)
    assert spikes.loss_detector.steps_seen == STEPS and spikes.history.size == STEPS  # all settled by the end


@pytest.mark.parametrize("actions", [["skip"], ["save_batch"]])  # save_batch: no queue of 32 whole batches
def test_host_detector_that_acts_reads_once_per_step(tmp_path: Path, sine_csv: Path, one_thread, actions: list[str]):
    counter = counted_fit(tmp_path, sine_csv, LossSpikeCallback(window=20, warmup=10, actions=actions))
    assert counter.counts(list(range(STEPS))) == [1] * STEPS, dict(counter.by_name)


def test_skip_action_reads_one_flag_per_step(tmp_path: Path, sine_csv: Path, one_thread):
    """``skip`` (and ``stop``) must know before the update whether to cancel it: one read per step, no more."""
    spikes = LossSpikeCallback(window=20, warmup=10, actions=["skip"], on_device=True)
    counter = counted_fit(tmp_path, sine_csv, spikes)
    quiet = [s for s in range(STEPS) if (s + 1) % LOG_EVERY and s != STEPS - 1]
    assert counter.counts(quiet) == [1] * len(quiet), dict(counter.by_name)

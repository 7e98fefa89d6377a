"""The loss-spike callback inside real Trainer fits, with spikes injected at known global steps.

Covers the actions (``skip`` under plain, clipped and mixed precision, ``stop``, ``save_batch``), non-finite losses,
the stability layout written once per run, and settings validation. A spike is injected by adding a constant to the
targets of one training batch, so the loss, the per-window losses and the gradients all really spike.
About 20 s on two quiet cores (tiny LSTM, two epochs of the 400-step sine at most).
"""

from __future__ import annotations

import json
import logging
import re
from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback, LearningRateMonitor
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.plugins.precision import MixedPrecision
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.model.module import LSTMForecaster
from lightning_lstm.spikes import LossSpikeCallback
from lightning_lstm.spikes.outputs import STABILITY_LAYOUT

STEPS_PER_EPOCH = 17  # the 400-step sine: 271 training windows of lookback 8 + horizon 2, batches of 16
SPIKE = 30  # the injected step: epoch 1, after the warm-up and with a full baseline window


class InjectedSpikes(LSTMForecaster):
    """Adds ``shift`` to the targets of the training batches at ``spike_steps`` (nan: a non-finite loss)."""

    def __init__(self, spike_steps: tuple[int, ...] = (), shift: float = 20.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spike_steps, self.shift = set(spike_steps), shift

    def training_step(self, batch, batch_idx):
        if self.trainer.global_step in self.spike_steps:
            batch = dict(batch, y=batch["y"] + self.shift)
        return super().training_step(batch, batch_idx)


class SkippedBatches(InjectedSpikes):
    """Returns None from ``training_step`` at ``none_steps``: no backward, yet Lightning calls the optimizer hooks."""

    def __init__(self, none_steps: tuple[int, ...], **kwargs) -> None:
        super().__init__(**kwargs)
        self.none_steps = set(none_steps)

    def training_step(self, batch, batch_idx):
        if self.trainer.global_step in self.none_steps:
            return None  # last_train_step still holds the previous step's loss
        return super().training_step(batch, batch_idx)


class StepProbe(Callback):
    """Copies of the weights, the optimizer state and the batch's window ids around the watched global steps."""

    def __init__(self, steps: tuple[int, ...]) -> None:
        self.steps = set(steps)
        self.before: dict[int, dict] = {}
        self.after: dict[int, dict] = {}
        self.window_ids: dict[int, torch.Tensor] = {}

    @staticmethod
    def snapshot(trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict:
        state = trainer.optimizers[0].state
        return {
            "params": {n: p.detach().clone() for n, p in pl_module.named_parameters()},
            "optimizer": {i: {k: v.clone() for k, v in s.items()} for i, s in enumerate(state.values())},
        }

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step in self.steps:
            self.before[trainer.global_step] = self.snapshot(trainer, pl_module)
            self.window_ids[trainer.global_step] = batch["window_id"].clone()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step - 1  # the optimizer step of this batch has been counted
        if step in self.steps:
            self.after[step] = self.snapshot(trainer, pl_module)


def same(a: dict, b: dict) -> bool:
    """Whether two snapshots hold exactly equal tensors (NaN equal to NaN)."""
    if a.keys() != b.keys():
        return False
    return all(same(a[k], b[k]) if isinstance(a[k], dict) else torch.equal(a[k], b[k]) for k in a)


def fit(
    root: Path,
    csv: Path,
    spike_steps: tuple[int, ...],
    spikes: LossSpikeCallback,
    *callbacks: Callback,
    shift: float = 20.0,
    max_steps: int = SPIKE + 2,
    **trainer_kwargs,
) -> tuple[pl.Trainer, InjectedSpikes]:
    """A tiny no-shuffle fit on ``csv`` with spikes injected at ``spike_steps``; TensorBoard logs in ``root/run``."""
    data = TimeSeriesDataModule(
        path=str(csv), target_columns=["value"], lookback=8, horizon=2, batch_size=16, shuffle=False, window_norm="none"
    )
    model = InjectedSpikes(
        spike_steps,
        shift,
        horizon=2,
        hidden_size=4,
        num_layers=1,
        scheduler=None,
        optimizer=partial(torch.optim.AdamW, lr=1e-2),
    )
    trainer = pl.Trainer(
        default_root_dir=root,
        logger=TensorBoardLogger(root, name="run"),
        callbacks=[spikes, *callbacks],
        max_steps=max_steps,
        max_epochs=-1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
        deterministic=True,
        **trainer_kwargs,
    )
    trainer.fit(model, data)
    return trainer, model


def spike_callback(**kwargs) -> LossSpikeCallback:
    return LossSpikeCallback(**{"window": 20, "warmup": 10, **kwargs})


def events(run_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def text(accumulator: EventAccumulator, tag: str) -> list[str]:
    return [e.tensor_proto.string_val[0].decode() for e in accumulator.Tensors(f"{tag}/text_summary")]


PRECISIONS = {
    "plain": {},
    "norm-clipped": {"gradient_clip_val": 1.0},
    "bf16-mixed": {"precision": "bf16-mixed"},
    # fp16 with Lightning's GradScaler path: unscale, then our hook, then scaler.step (init_scale 1: no overflow skips).
    "16-mixed-gradscaler": {
        "plugins": [MixedPrecision("16-mixed", "cpu", torch.amp.GradScaler("cpu", init_scale=1.0))]
    },
}


@pytest.mark.parametrize("actions", [["skip"], ["log"]])
@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_skip_leaves_weights_and_adamw_state_unchanged_on_the_spiking_step(
    tmp_path: Path, sine_csv: Path, one_thread, precision: str, actions: list[str]
):
    probe = StepProbe((SPIKE - 1, SPIKE))
    spikes = spike_callback(actions=actions)
    kwargs = PRECISIONS[precision]
    # oneDNN's CPU LSTM has no reduced-precision kernel here; the native one does (autocast is what is under test).
    with torch.backends.mkldnn.flags(enabled=not kwargs.get("precision") and not kwargs.get("plugins")):
        fit(tmp_path, sine_csv, (SPIKE,), spikes, probe, **kwargs)

    assert [r.global_step for r in spikes.records] == [SPIKE]
    record = spikes.records[0]
    assert record.score > 100 and record.skipped == ("skip" in actions)
    assert not same(probe.before[SPIKE - 1], probe.after[SPIKE - 1])  # an ordinary step moves weights and state
    if "skip" in actions:
        assert same(probe.before[SPIKE], probe.after[SPIKE])  # weights, AdamW step counts and moments
    else:
        assert not same(probe.before[SPIKE]["params"], probe.after[SPIKE]["params"])


@pytest.mark.parametrize("actions", [["skip"], ["log"]])
def test_a_nonfinite_loss_is_a_spike_even_during_warmup(tmp_path: Path, sine_csv: Path, one_thread, actions):
    spikes = spike_callback(actions=actions)
    trainer, model = fit(tmp_path, sine_csv, (3,), spikes, shift=float("nan"), max_steps=6)

    first = spikes.records[0]
    assert (first.global_step, first.nonfinite, first.skipped, first.score) == (
        3,
        True,
        "skip" in actions,
        float("inf"),
    )
    finite = all(torch.isfinite(p).all() for p in model.parameters())
    if "skip" in actions:
        assert len(spikes.records) == 1 and finite
    else:  # the NaN update poisons every weight: every later loss is NaN too
        assert not finite and [r.global_step for r in spikes.records] == [3, 4, 5]
    report = json.loads((Path(trainer.log_dir) / "spikes.json").read_text())
    assert "non-finite loss" in " ".join(report["diagnosis"])


def test_stop_after_n_spikes_stops_cleanly_with_a_loadable_checkpoint_and_says_why(
    tmp_path: Path, sine_csv: Path, one_thread, caplog: pytest.LogCaptureFixture
):
    spikes = spike_callback(actions=["stop"], stop_after=2)
    with caplog.at_level(logging.WARNING, logger="lightning_lstm"):
        trainer, model = fit(tmp_path, sine_csv, (20, 24, 28), spikes, max_steps=100)

    assert trainer.global_step == 25  # the second spike's step ran, then the fit ended
    assert [r.global_step for r in spikes.records] == [20, 24]
    run = Path(trainer.log_dir)
    path = run / "checkpoints" / "spike-stop.ckpt"
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["global_step"] == 25
    fresh = LSTMForecaster(horizon=2, hidden_size=4, num_layers=1)
    fresh.load_state_dict(checkpoint["state_dict"])
    assert all(torch.equal(a, b) for a, b in zip(fresh.parameters(), model.parameters(), strict=True))
    state = checkpoint["callbacks"]["LossSpikeCallback"]
    assert [r["global_step"] for r in state["records"]] == [20, 24]
    assert state["loss_detector"]["steps_seen"] == 25

    why = "stopped after 2 loss spikes (spikes.stop_after=2)"
    assert any(why in m and str(path) in m for m in caplog.messages), caplog.messages
    report = json.loads((run / "spikes.json").read_text())
    assert why in report["stop_reason"] and report["total_steps"] == 25
    assert why in text(events(run), "spikes/summary")[0]


def test_save_batch_writes_the_offending_batch_with_its_window_ids(tmp_path: Path, sine_csv: Path, one_thread):
    probe = StepProbe((20, 24))
    spikes = spike_callback(actions=["save_batch"], max_saved_batches=1)
    trainer, _ = fit(tmp_path, sine_csv, (20, 24), spikes, probe, max_steps=26)

    saved = sorted((Path(trainer.log_dir) / "spike_batches").iterdir())
    assert [p.name for p in saved] == ["step0000020.pt"]  # the second spike is over max_saved_batches
    payload = torch.load(saved[0], weights_only=True)
    assert payload["record"]["global_step"] == 20 and payload["record"]["batch_idx"] == 20 - STEPS_PER_EPOCH
    (batch,) = payload["ranks"]
    assert torch.equal(batch["window_id"], probe.window_ids[20])
    assert batch["x"].shape == (16, 8, 1) and batch["y"].shape == (16, 2, 1)
    top = {w["window_id"] for w in payload["record"]["top_windows"]}
    assert top <= set(batch["window_id"].tolist()) and len(top) == 5


def test_per_step_scalars_and_the_layout_once_per_run_even_over_two_fits(tmp_path: Path, sine_csv: Path, one_thread):
    spikes = spike_callback(log_every_n_steps=1)
    lr_monitor = LearningRateMonitor(logging_interval="step")  # the dashboard charts its learning rates
    trainer, model = fit(
        tmp_path,
        sine_csv,
        (SPIKE,),
        spikes,
        lr_monitor,
        max_steps=SPIKE + 2,
        log_every_n_steps=1,
        gradient_clip_val=1.0,
    )  # clipping: the norm chart draws the clip value
    trainer.fit_loop.epoch_loop.max_steps = SPIKE + 6  # a second fit on the same trainer logs to the same run
    trainer.fit(model, trainer.datamodule)

    accumulator = events(Path(trainer.log_dir))
    assert len(accumulator.Tensors("custom_scalars__config__")) == 1
    spike = accumulator.Scalars("stability/spike")
    assert [e.step for e in spike] == list(range(SPIKE + 6))
    assert [e.step for e in spike if e.value == 1.0] == [SPIKE]
    layout_tags = {tag for chart in STABILITY_LAYOUT["Stability"].values() for tag in chart[1]}
    written = accumulator.Tags()["scalars"]
    assert all(any(re.match(pattern, tag) for tag in written) for pattern in layout_tags), (layout_tags, written)
    assert [e.step for e in accumulator.Scalars("train/loss_step")] == list(range(SPIKE + 6))  # beside the marker


def test_a_step_without_a_new_training_loss_is_not_scored_twice(tmp_path: Path, sine_csv: Path, one_thread):
    spikes = spike_callback()
    data = TimeSeriesDataModule(path=str(sine_csv), target_columns=["value"], lookback=8, horizon=2, shuffle=False)
    model = SkippedBatches((4, 5), horizon=2, hidden_size=4, num_layers=1, scheduler=None)
    trainer = pl.Trainer(
        logger=False, callbacks=[spikes], max_steps=8, limit_val_batches=0, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(model, data)
    assert trainer.global_step == 8 and spikes.loss_detector.steps_seen == 6


def test_settings_are_checked_with_the_option_named():
    with pytest.raises(ValueError, match="spikes.actions"):
        LossSpikeCallback(actions=["log", "explode"])
    with pytest.raises(ValueError, match="spikes.stop_after must be >= 1"):
        LossSpikeCallback(stop_after=0)
    with pytest.raises(ValueError, match="spikes.act_on"):
        LossSpikeCallback(act_on="grad")

"""The callbacks on a plain LightningModule (an nn.Linear on random tensors, no LSTMForecaster, no DataModule).

What each callback needs is in lightning_lstm/callbacks/contracts.py. Without per-window losses the spike callback runs
in loss-only mode and says so once; with them (and still no DataModule) ``skip`` works; ``skip`` without them, the
forecast plot and the prediction writer without their data each say what is missing. A few seconds on one core.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_lstm.callbacks import ForecastPlot, ForecastWriter
from lightning_lstm.callbacks.contracts import (
    PreClipGradNorm,
    StepWindowLosses,
    WindowDescriptions,
    missing_members,
)
from lightning_lstm.spikes import LossSpikeCallback

SPIKE = 30  # the injected global step: epoch 1 (20 batches of 16 per epoch), after a warm-up of 10
LOSS_ONLY = (
    "LossSpikeCallback runs in loss-only mode: PlainRegression has no `last_train_step` (the step's per-window losses "
    "and window ids, lightning_lstm.callbacks.contracts.StepWindowLosses). Spikes are scored from the loss "
    "training_step returns, after the optimizer step: spike reports name no windows, 'skip' is unavailable and "
    "'stop' keeps the spiking update. The gradient norm is still scored."
)


class PlainRegression(pl.LightningModule):
    """Linear regression on 4 features; the targets of the batch at global step ``spike_step`` are shifted by 50."""

    def __init__(self, spike_step: int = SPIKE) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 1)
        self.spike_step = spike_step

    def per_window_loss(self, batch: list[torch.Tensor]) -> torch.Tensor:
        x, y = batch
        if self.trainer.global_step == self.spike_step:
            y = y + 50.0
        return ((self.layer(x) - y) ** 2).mean(dim=1)  # (B,)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.per_window_loss(batch).mean()
        self.log("train_loss", loss)
        return loss

    def predict_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.layer(batch[0])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


class WindowRegression(PlainRegression):
    """The same, providing the StepWindowLosses contract: a window is a row of the tensor dataset."""

    def __init__(self) -> None:
        super().__init__()
        self.last_train_step: dict[str, torch.Tensor] = {}

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        per_window = self.per_window_loss(batch)
        rows = torch.arange(len(per_window)) + batch_idx * 16
        self.last_train_step = {
            "loss": per_window.mean().detach(),
            "window_losses": per_window.detach(),
            "window_ids": rows,
        }
        return per_window.mean()


def loader() -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(320, 4, generator=generator)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.1 * torch.randn(320, 1, generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=16, shuffle=False)


def fit(root: Path, model: pl.LightningModule, *callbacks: pl.Callback) -> pl.Trainer:
    pl.seed_everything(0)
    trainer = pl.Trainer(
        default_root_dir=root, logger=TensorBoardLogger(root, name="plain"), callbacks=list(callbacks),
        max_steps=SPIKE + 5, log_every_n_steps=5, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu", devices=1,
    )  # fmt: skip
    trainer.fit(model, train_dataloaders=loader())
    return trainer


def spike_callback(**kwargs) -> LossSpikeCallback:
    return LossSpikeCallback(window=20, warmup=10, **kwargs)


def events(run: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run), size_guidance={"scalars": 0, "tensors": 0})
    accumulator.Reload()
    return accumulator


def test_the_contracts_name_what_a_plain_module_lacks():
    plain, windows = PlainRegression(), WindowRegression()
    assert not isinstance(plain, StepWindowLosses) and isinstance(windows, StepWindowLosses)
    assert missing_members(plain, StepWindowLosses) == ["last_train_step"]
    assert missing_members(plain, PreClipGradNorm) == ["pre_clip_grad_norm"]
    assert not isinstance(None, WindowDescriptions)


def test_loss_only_mode_detects_and_logs_a_spike_and_says_what_it_costs(
    tmp_path: Path, one_thread, caplog: pytest.LogCaptureFixture
):
    spikes = spike_callback(actions=["log", "save_batch"])
    with pytest.warns(UserWarning) as warned, caplog.at_level(logging.INFO, logger="lightning_lstm"):
        trainer = fit(tmp_path, PlainRegression(), spikes)
    messages = [str(w.message) for w in warned]
    assert messages.count(LOSS_ONLY) == 1, messages  # once, in setup

    assert not spikes.per_window
    record = spikes.records[0]  # the spiking update is applied (loss-only mode): the steps after it spike too
    assert [r.global_step for r in spikes.records] == list(range(SPIKE, SPIKE + len(spikes.records)))
    assert (record.global_step, record.epoch, record.batch_idx) == (SPIKE, 1, SPIKE - 20)
    assert record.score > 100 and record.loss > 100 * record.baseline and not record.skipped
    assert record.top_windows == [] and (record.batch_size, record.nominal_batch_size) == (16, 16)
    assert record.grad_spike and record.grad_norm > 0  # the callback took the norm itself
    assert any(f"loss spike at step {SPIKE} (epoch 1, batch {SPIKE - 20})" in m for m in caplog.messages)

    run = Path(trainer.log_dir)
    report = json.loads((run / "spikes.json").read_text())
    assert [s["global_step"] for s in report["spikes"]] == [r.global_step for r in spikes.records]
    assert report["total_steps"] == SPIKE + 5
    payload = torch.load(run / "spike_batches" / f"step{SPIKE:07d}.pt", weights_only=True)
    (batch,) = payload["ranks"]
    assert batch[0].shape == (16, 4) and payload["record"]["global_step"] == SPIKE
    accumulator = events(run)
    marked = [e.step for e in accumulator.Scalars("stability/spike") if e.value == 1.0]
    assert marked == [r.global_step for r in spikes.records]
    assert [e.step for e in accumulator.Tensors("spikes/report/text_summary")] == marked
    assert [e.step for e in accumulator.Scalars("stability/loss_threshold")] == sorted(
        {*range(4, SPIKE + 5, 5), *marked}
    )


def test_skip_needs_the_loss_before_the_optimizer_step(tmp_path: Path, one_thread):
    with pytest.raises(ValueError, match=r"'skip' .* PlainRegression has no `last_train_step` .* or drop 'skip'"):
        fit(tmp_path, PlainRegression(), spike_callback(actions=["skip"]))


def test_with_per_window_losses_and_no_datamodule_skip_works_and_the_report_names_no_windows(
    tmp_path: Path, one_thread
):
    model = WindowRegression()
    spikes = spike_callback(actions=["skip"])
    with pytest.warns(UserWarning, match="the data \\(NoneType\\) has no describe_windows.*name no windows"):
        fit(tmp_path, model, spikes)
    (record,) = spikes.records
    assert spikes.per_window and record.global_step == SPIKE and record.skipped and record.top_windows == []
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_forecast_plot_and_writer_say_what_they_need(tmp_path: Path, one_thread):
    with pytest.warns(UserWarning, match="ForecastPlot plots nothing: it needs the module's to_original_scale, the "):
        fit(tmp_path, PlainRegression(spike_step=-1), ForecastPlot(every_n_epochs=1))
    writer = ForecastWriter(output_path=str(tmp_path / "out.csv"))
    trainer = pl.Trainer(callbacks=[writer], logger=False, accelerator="cpu", devices=1, enable_progress_bar=False)
    with pytest.raises(ValueError, match=r"predictions: ForecastWriter needs a data module with \['frame', "):
        trainer.predict(PlainRegression(), loader())
    assert not (tmp_path / "out.csv").exists()

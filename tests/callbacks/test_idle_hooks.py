"""Idle per-batch hooks are not dispatched; the hooks callbacks implement still run, and a profiler sees them all."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, LearningRateMonitor
from torch.utils.data import DataLoader, TensorDataset

from lightning_lstm.callbacks import ForecastWriter
from lightning_lstm.callbacks.idle_hooks import BATCH_HOOKS, idle_batch_hooks, skip_idle_hooks
from lightning_lstm.cli import build_cli
from lightning_lstm.spikes import LossSpikeCallback
from tests.helpers import tiny_fit_args


class CountsBatchEnds(Callback):
    """Implements one per-batch hook and counts its calls."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.calls["on_train_batch_end"] += 1


class CountsBatchEndsToo(CountsBatchEnds):
    """Inherits its one hook from a parent other than ``Callback``."""


class Linear(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(trainer_kwargs: dict, callbacks: list[Callback], tmp_path: Path) -> pl.Trainer:
    data = TensorDataset(torch.randn(16, 2), torch.randn(16, 1))
    trainer = pl.Trainer(
        max_epochs=2, callbacks=callbacks, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path, **trainer_kwargs,
    )  # fmt: skip
    skip_idle_hooks(trainer)
    trainer.fit(Linear(), DataLoader(data, batch_size=4))
    return trainer


def test_only_the_hooks_a_class_leaves_empty_are_shadowed() -> None:
    assert idle_batch_hooks(CountsBatchEnds()) == [hook for hook in BATCH_HOOKS if hook != "on_train_batch_end"]
    assert "on_train_batch_end" not in idle_batch_hooks(CountsBatchEndsToo())
    assert set(idle_batch_hooks(LossSpikeCallback())).isdisjoint(
        {"on_train_batch_start", "on_before_optimizer_step", "on_train_batch_end"}
    )
    assert "on_train_batch_start" not in idle_batch_hooks(LearningRateMonitor())
    assert "on_predict_batch_end" not in idle_batch_hooks(ForecastWriter())


def test_a_fit_skips_idle_hooks_and_still_calls_the_implemented_ones(tmp_path: Path) -> None:
    counting, idle = CountsBatchEndsToo(), Callback()
    trainer = fit({}, [counting, idle], tmp_path)  # a TypeError here: Lightning called a shadowed (None) hook
    assert counting.calls["on_train_batch_end"] == 8  # 4 batches x 2 epochs
    assert counting.on_train_batch_end is not None and counting.on_after_backward is None
    assert all(getattr(idle, hook) is None for hook in BATCH_HOOKS)
    assert trainer.global_step == 8


def test_a_profiling_trainer_keeps_every_hook(tmp_path: Path) -> None:
    idle = Callback()
    fit({"profiler": "simple"}, [idle], tmp_path)
    assert all(callable(getattr(idle, hook)) for hook in BATCH_HOOKS)


def test_the_cli_trainer_dispatches_no_idle_hook(tmp_path: Path) -> None:
    cli = build_cli(tiny_fit_args(tmp_path), run=False)
    by_name = {type(callback).__name__: callback for callback in cli.trainer.callbacks}
    assert by_name["ForecastPlot"].on_train_batch_end is None
    assert by_name["SaveConfigCallback"].on_before_zero_grad is None
    assert callable(by_name["LossSpikeCallback"].on_before_optimizer_step)
    assert callable(by_name["LearningRateMonitor"].on_train_batch_start)
    assert callable(by_name["RunCheckpoint"].on_train_batch_end)
    assert all(not idle_batch_hooks(callback) for callback in cli.trainer.callbacks)

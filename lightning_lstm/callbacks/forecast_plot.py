"""Forecast-against-truth figures for a few fixed windows, logged to TensorBoard during validation and at test."""

from __future__ import annotations

import lightning.pytorch as pl
import matplotlib
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn

from lightning_lstm.callbacks.contracts import ForecastData, OriginalScale, missing_members
from lightning_lstm.callbacks.run_io import tensorboard_writer

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)


class ForecastPlot(Callback):
    """Plots history, truth and forecast (original scale, first target) of ``num_windows`` evenly spaced windows.

    The same windows every time, so the figures of successive epochs compare. Tags: ``forecast/val`` (with the epoch
    as step) and ``forecast/test``. Needs a TensorBoard logger, a module with ``to_original_scale``
    (:class:`~.contracts.OriginalScale`) and data that serves windows (:class:`~.contracts.ForecastData`); without
    them it warns once at setup and plots nothing.

    Args:
        every_n_epochs: plot after every N-th validation epoch; 0 turns validation plots off.
        num_windows: windows per figure.
    """

    def __init__(self, every_n_epochs: int = 5, num_windows: int = 4) -> None:
        if every_n_epochs < 0 or num_windows < 1:
            raise ValueError("forecast_plot.every_n_epochs must be >= 0 and forecast_plot.num_windows >= 1")
        self.every_n_epochs = every_n_epochs
        self.num_windows = num_windows
        self.enabled = True

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        missing = [f"the module's {name}" for name in missing_members(pl_module, OriginalScale)]
        missing += [f"the data's {name}" for name in missing_members(trainer.datamodule, ForecastData)]
        self.enabled = not missing
        if missing:
            rank_zero_warn(
                f"ForecastPlot plots nothing: it needs {', '.join(missing)} (lightning_lstm.callbacks.contracts."
                "OriginalScale, ForecastData); without a figure to make, the callback can be removed."
            )

    @rank_zero_only
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not self.every_n_epochs:
            return
        epoch = trainer.current_epoch
        if (epoch + 1) % self.every_n_epochs == 0 or epoch + 1 == trainer.max_epochs:
            self.log_figure(trainer, pl_module, "val", epoch)

    @rank_zero_only
    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.log_figure(trainer, pl_module, "test", trainer.global_step)

    def log_figure(self, trainer: pl.Trainer, pl_module: pl.LightningModule, split: str, step: int) -> None:
        writer = tensorboard_writer(trainer)
        if writer is None or not self.enabled:
            return
        figure = self.figure(pl_module, trainer.datamodule, split)
        if figure is not None:
            writer.add_figure(f"forecast/{split}", figure, global_step=step)
            plt.close(figure)

    def figure(self, pl_module: OriginalScale, datamodule: ForecastData, split: str):
        dataset = datamodule.dataset(split)
        if len(dataset) == 0:
            return None
        picks = np.unique(np.linspace(0, len(dataset) - 1, self.num_windows).round().astype(int)).tolist()
        batch = dataset.__getitems__(picks)
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            forecast = pl_module.to_original_scale(pl_module(batch["x"].to(pl_module.device)).cpu(), batch)
        pl_module.train(was_training)
        lookback = datamodule.hparams.lookback
        horizon = datamodule.hparams.horizon
        target = datamodule.target_columns[0]
        frame = datamodule.frame
        column = frame.columns.index(target)
        figure, axes = plt.subplots(len(picks), 1, figsize=(8, 2.2 * len(picks)), squeeze=False)
        windows = zip(axes[:, 0], batch["window_id"].numpy(), forecast, batch["y_raw"], strict=True)
        for ax, start, pred, truth in windows:
            history = frame.values[start : start + lookback, column]
            ax.plot(np.arange(lookback), history, color="0.4", label="history")
            steps = np.arange(lookback, lookback + horizon)
            ax.plot(steps, truth[:, 0].numpy(), "o-", color="tab:blue", label="truth")
            ax.plot(steps, pred[:, 0].numpy(), "x--", color="tab:red", label="forecast")
            series = datamodule.describe_windows(np.array([start]), forecast=False).iloc[0]
            ax.set_title(f"{series['series']}: targets {series['target_start']} .. {series['target_end']}", fontsize=8)
            ax.set_ylabel(target)
        axes[0, 0].legend(loc="upper left", fontsize=7)
        figure.tight_layout()
        return figure

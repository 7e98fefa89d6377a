"""Forecast-against-truth figures for a few fixed windows, logged to TensorBoard during validation and at test.

With quantile forecasts (``model.quantiles``) each figure shades the band between the outermost levels around the
median.
"""

from __future__ import annotations

import lightning.pytorch as pl
import matplotlib
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_only, rank_zero_warn

from lightning_lstm.callbacks.contracts import ForecastData, OriginalScale, missing_members
from lightning_lstm.callbacks.run_io import tensorboard_writer
from lightning_lstm.model.quantiles import quantile_label

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the headless backend

DPI = 100
FIGSIZE = (5.0, 3.3)  # inches: 500 x 330 px, about the width of TensorBoard's image card, so nothing shrinks much
HISTORY_HORIZONS = 6  # history drawn: the last 6 horizons of the lookback at most


class ForecastPlot(Callback):
    """Plots history, truth and forecast (original scale, first target) of ``num_windows`` evenly spaced windows;
    with quantile forecasts ``(B, H, T, Q)`` the median as the forecast and the band from the lowest to the highest
    level.

    One image per window (500 x 330 px at 100 dpi, near TensorBoard's card width, so its 11-13 pt text stays legible
    without "show actual image size"), titled with the series and the timestamps of its first and last target.

    The same windows every time, so the figures of successive epochs compare. Tags: ``forecast/val/<i>`` (with the
    epoch as step) and ``forecast/test/<i>``, ``i`` = 1 .. ``num_windows``. Needs a TensorBoard logger, a module with
    ``to_original_scale`` (:class:`~.contracts.OriginalScale`) and data that serves windows
    (:class:`~.contracts.ForecastData`); without them it warns once at setup and plots nothing.

    Args:
        every_n_epochs: plot after every N-th validation epoch; 0 turns validation plots off.
        num_windows: windows plotted, one image each.
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
        for i, figure in enumerate(self.figures(pl_module, trainer.datamodule, split), start=1):
            writer.add_figure(f"forecast/{split}/{i}", figure, global_step=step)  # closes the figure

    def figures(self, pl_module: OriginalScale, datamodule: ForecastData, split: str) -> list:
        """One figure per window of ``split`` (none without windows): history, truth and forecast of the 1st target."""
        dataset = datamodule.dataset(split)
        if len(dataset) == 0:
            return []
        picks = np.unique(np.linspace(0, len(dataset) - 1, self.num_windows).round().astype(int)).tolist()
        batch = dataset.__getitems__(picks)
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad():
            if hasattr(pl_module, "inputs"):  # the package's module: x, known (and seasonal_base for a residual)
                inputs = [None if v is None else v.to(pl_module.device) for v in pl_module.inputs(batch)]
            else:
                inputs = [batch[k].to(pl_module.device) for k in ("x", "known") if k in batch]  # (B, L, F), (B, L+H, K)
            prediction = pl_module(*inputs)  # (B, H, T) or (B, H, T, Q)
            if hasattr(pl_module, "calibrated"):  # the intervals' conformal widening, as predict applies it
                prediction = pl_module.calibrated(prediction)
            forecast = pl_module.to_original_scale(prediction.cpu(), batch)
        band = None
        if forecast.dim() == 4:  # quantiles: the median is the forecast, the outermost levels the band
            levels = list(pl_module.quantiles)
            band, forecast = forecast[..., [0, -1]], forecast[..., levels.index(0.5)]  # (B, H, T, 2), (B, H, T)
        pl_module.train(was_training)
        lookback, horizon = datamodule.hparams.lookback, datamodule.hparams.horizon
        target = datamodule.target_columns[0]
        frame = datamodule.frame
        column = frame.columns.index(target)
        shown = min(lookback, HISTORY_HORIZONS * horizon)  # the last inputs: the forecast stays wide enough to read
        described = datamodule.describe_windows(batch["window_id"].numpy(), forecast=False)
        figures = []
        windows = zip(batch["window_id"].numpy(), forecast, batch["y_raw"], described.itertuples(), strict=True)
        for i, (start, pred, truth, where) in enumerate(windows):
            figure, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
            history = frame.values[start + lookback - shown : start + lookback, column]
            ax.plot(np.arange(1 - shown, 1), history, color="0.35", linewidth=1.5, label="history")
            steps = np.arange(1, horizon + 1)  # steps after the forecast origin (the last input, step 0)
            ax.plot(steps, truth[:, 0].numpy(), "o-", color="tab:blue", linewidth=2, label="truth")
            ax.plot(steps, pred[:, 0].numpy(), "x--", color="tab:red", linewidth=2, markersize=8, label="forecast")
            if band is not None:
                low, high = band[i, :, 0, 0].numpy(), band[i, :, 0, 1].numpy()
                label = f"{quantile_label(levels[0])}-{quantile_label(levels[-1])}"
                ax.fill_between(steps, low, high, color="tab:red", alpha=0.2, linewidth=0, label=label)
            ax.axvline(0.5, color="0.6", linestyle=":", linewidth=1)
            ax.set_title(f"{where.series}: {where.target_start} .. {where.target_end}", fontsize=13)
            ax.set_ylabel(target, fontsize=12)
            ax.set_xlabel("steps after the forecast origin", fontsize=11)
            ax.tick_params(labelsize=11)
            ax.grid(alpha=0.3)
            ax.legend(loc="upper left", fontsize=10)
            figure.tight_layout()
            figures.append(figure)
        return figures

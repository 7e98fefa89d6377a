"""The Python API for notebooks: train on a pandas DataFrame, get forecasts back as one, forecast new data from a
checkpoint with the training statistics. The README's "Python API" section runs these end to end.

Forecast tables have the columns of the CLI's ``predictions.csv`` (:class:`~lightning_lstm.callbacks.ForecastWriter`,
whose table code they share): ``window_id``, ``series``, ``forecast_origin``, ``timestamp``, ``step`` (1..horizon),
one column per target on the original scale and, in backtests, ``<target>_true`` beside it.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, get_args

import lightning.pytorch as pl
import pandas as pd

from lightning_lstm.callbacks.prediction_writer import ForecastWriter, collect_outputs
from lightning_lstm.data.datamodule import PredictMode, TimeSeriesDataModule
from lightning_lstm.model.module import LSTMForecaster

__all__ = ["TimeSeriesDataModule", "forecast", "forecaster_for", "load_forecaster", "predict"]


def forecaster_for(data: TimeSeriesDataModule, **model_args: Any) -> LSTMForecaster:
    """An :class:`~lightning_lstm.model.module.LSTMForecaster` sized for ``data``, as the CLI links them.

    Args:
        data: the data module; its feature, target and known-future columns and its horizon size the network.
        model_args: the model's other arguments, e.g. ``hidden_size=16, num_layers=1, loss="huber"``.
    """
    sizes = {"input_size": data.num_features, "num_targets": data.num_targets, "horizon": data.hparams.horizon}
    return LSTMForecaster(**sizes, future_size=data.num_known_features, **model_args)


def predict(
    model: LSTMForecaster,
    data: TimeSeriesDataModule,
    mode: PredictMode | None = None,
    trainer: pl.Trainer | None = None,
) -> pd.DataFrame:
    """Forecasts of ``model`` on ``data`` as a DataFrame, one row per window and horizon step, on the original scale.

    Args:
        model: a trained forecaster (after ``trainer.fit``, or from :func:`load_forecaster`).
        data: the data module to forecast; with a fitted or checkpoint-restored scaling.
        mode: ``forecast`` (the steps after each series' end) or ``backtest`` (every window of ``data.predict_split``,
            with the truth in ``<target>_true``); default: the data's ``predict_mode``. Only this call uses it.
        trainer: the Trainer to predict with; default: a quiet one (no logger, no checkpoints, no progress bar) on
            the accelerator Lightning picks.

    Returns:
        Columns ``window_id``, ``series``, ``forecast_origin``, ``timestamp``, ``step``, one per target, and in
        backtests ``<target>_true``; ordered by series, forecast origin and step.
    """
    if mode is not None and mode not in get_args(PredictMode):
        raise ValueError(f"mode must be one of {list(get_args(PredictMode))}, got {mode!r}")
    if trainer is None:
        with quiet_lightning():
            trainer = pl.Trainer(
                devices=1,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
            )
    saved_mode = data.hparams.predict_mode
    data.hparams.predict_mode = mode or saved_mode
    try:
        outputs = collect_outputs(trainer.predict(model, datamodule=data, return_predictions=True) or [])
    finally:
        data.hparams.predict_mode = saved_mode
    return ForecastWriter.build_table(data, outputs)


@contextmanager
def quiet_lightning():
    """Without Lightning's start-up lines (accelerators found, tips) while building a Trainer nobody asked for."""
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def load_forecaster(
    checkpoint: str | Path, dataframe: pd.DataFrame | None = None, **data_args: Any
) -> tuple[LSTMForecaster, TimeSeriesDataModule]:
    """The model and the data module of a checkpoint, ready to forecast new data with the training statistics.

    The model comes from ``LSTMForecaster.load_from_checkpoint``; the data module from
    ``TimeSeriesDataModule.load_from_checkpoint``, with the settings of training and the fitted scaling and clip
    bounds stored in the same checkpoint (the data module's state). Series are matched by name.

    Args:
        checkpoint: a ``.ckpt`` written by ``fit`` (the CLI's ``last.ckpt``, ``trainer.checkpoint_callback``'s paths).
        dataframe: new data to forecast, with the training's columns (at least ``lookback`` rows per series);
            default: the training's file (``data.path``; the bundled series when it was trained on a DataFrame).
        data_args: data settings to change, e.g. ``predict_mode="backtest"``, ``predict_split="all"``,
            ``batch_size=256``; the columns, lookback, horizon and scaling must stay those of training.
    """
    model = LSTMForecaster.load_from_checkpoint(checkpoint, map_location="cpu")
    if dataframe is not None:
        data_args = {"path": None, "csv_options": None, **data_args, "dataframe": dataframe}
    data = TimeSeriesDataModule.load_from_checkpoint(checkpoint, map_location="cpu", **data_args)
    if data.stats is None:
        raise ValueError(
            f"{checkpoint}: no data statistics of TimeSeriesDataModule in the checkpoint; use one written by fit with "
            "this package's data module"
        )
    model.eval()
    return model, data


def forecast(
    checkpoint: str | Path, dataframe: pd.DataFrame, mode: PredictMode | None = None, **data_args: Any
) -> pd.DataFrame:
    """Forecasts of a checkpoint's model for ``dataframe`` with the training statistics: :func:`load_forecaster`,
    then :func:`predict`. ``mode`` as in :func:`predict`; ``data_args`` as in :func:`load_forecaster`."""
    model, data = load_forecaster(checkpoint, dataframe, **data_args)
    return predict(model, data, mode)

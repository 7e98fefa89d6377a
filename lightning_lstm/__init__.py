"""lightning_lstm: train LSTM regressors on real, messy time series with PyTorch Lightning, and keep training stable."""

from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.model.module import LSTMForecaster
from lightning_lstm.model.regressor import LSTMRegressor

__all__ = ["LSTMForecaster", "LSTMRegressor", "TimeSeriesDataModule"]
__version__ = "0.1.0"

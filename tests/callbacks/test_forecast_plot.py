"""The forecast images: their size, one per window, titled with the series and the window's dates."""

from __future__ import annotations

import re
from pathlib import Path

from lightning_lstm.callbacks import ForecastPlot
from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.model.module import LSTMForecaster

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def test_forecast_figures_one_titled_image_per_window_at_100_dpi(sine_csv: Path, one_thread):
    data = TimeSeriesDataModule(path=str(sine_csv), target_columns=["value"], lookback=30, horizon=4)
    data.setup("fit")
    model = LSTMForecaster(horizon=4, hidden_size=4, num_layers=1)
    figures = ForecastPlot(num_windows=4).figures(model, data, "val")
    assert len(figures) == 4
    origins = []
    for figure in figures:
        figure.canvas.draw()
        assert figure.dpi >= 100 and figure.canvas.get_width_height() == (500, 330)  # TensorBoard's card: ~350 px
        (ax,) = figure.axes
        series, span = ax.get_title().split(": ")
        start, end = span.split(" .. ")
        assert series == "series" and DATE.fullmatch(start) and DATE.fullmatch(end) and start < end
        history, truth, forecast = ax.lines[:3]
        assert len(history.get_xdata()) == 24 and len(truth.get_xdata()) == len(forecast.get_xdata()) == 4
        origins.append(start)
    assert origins == sorted(set(origins))  # four different windows, in time order
    assert ForecastPlot(num_windows=1).figures(model, data, "test")[0].axes[0].get_title() != ax.get_title()

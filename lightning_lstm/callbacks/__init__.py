"""Every Lightning callback of the package, each with its needs stated in :mod:`.contracts`.

- :class:`LossSpikeCallback`: detect, act on and explain loss spikes (:mod:`.loss_spikes`, with its TensorBoard
  series in :mod:`.spike_tensorboard`, its records in :mod:`.spike_evidence`, ``spikes.json`` in :mod:`.spike_summary`,
  the "loss with spikes" image in :mod:`.spike_figure`);
- :class:`ForecastPlot`: forecast-against-truth figures in TensorBoard;
- :class:`ForecastWriter`: ``predict`` output as one CSV or Parquet file;
- :class:`RunCheckpoint`: ModelCheckpoint whose ``last.ckpt`` follows every epoch, with named exception checkpoints.

All write through :mod:`.run_io` (run folder, TensorBoard writer, cross-rank gather).
"""

from lightning_lstm.callbacks.checkpoint import RunCheckpoint
from lightning_lstm.callbacks.forecast_plot import ForecastPlot
from lightning_lstm.callbacks.loss_spikes import LossSpikeCallback
from lightning_lstm.callbacks.prediction_writer import ForecastWriter

__all__ = ["ForecastPlot", "ForecastWriter", "LossSpikeCallback", "RunCheckpoint"]

"""The package's general-purpose Lightning callbacks, each with its needs stated in :mod:`.contracts`:
:class:`ForecastPlot` (forecast-against-truth figures), :class:`ForecastWriter` (``predict`` output as one CSV or
Parquet file) and :class:`RunCheckpoint` (``last.ckpt`` follows every epoch; named exception checkpoints).

All write through :mod:`.run_io`. The loss-spike callback lives with the rest of the spike feature:
:class:`lightning_lstm.spikes.LossSpikeCallback` (its old class paths here still import, with a DeprecationWarning).
"""

from __future__ import annotations

import warnings
from typing import Any

from lightning_lstm.callbacks.checkpoint import RunCheckpoint
from lightning_lstm.callbacks.forecast_plot import ForecastPlot
from lightning_lstm.callbacks.prediction_writer import ForecastWriter

__all__ = ["ForecastPlot", "ForecastWriter", "RunCheckpoint"]


def _moved(module: str, name: str) -> Any:
    """``LossSpikeCallback`` from its new place, with a DeprecationWarning naming it; an AttributeError otherwise."""
    if name != "LossSpikeCallback":
        raise AttributeError(f"module {module!r} has no attribute {name!r}")
    warnings.warn(
        f"{module}.LossSpikeCallback moved to lightning_lstm.spikes.LossSpikeCallback; update the class path "
        "(in trainer.callbacks of your config) or the import",
        DeprecationWarning,
        stacklevel=3,
    )
    from lightning_lstm.spikes import LossSpikeCallback  # here, not above: lightning_lstm.spikes imports this package

    return LossSpikeCallback


def __getattr__(name: str) -> Any:
    return _moved(__name__, name)

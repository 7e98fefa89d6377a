"""Moved: the loss-spike callback is :class:`lightning_lstm.spikes.LossSpikeCallback`.

This class path (``lightning_lstm.callbacks.loss_spikes.LossSpikeCallback``) keeps importing, with a
DeprecationWarning, for configs written before the move.
"""

from __future__ import annotations

from typing import Any

from lightning_lstm.callbacks import _moved


def __getattr__(name: str) -> Any:
    return _moved(__name__, name)

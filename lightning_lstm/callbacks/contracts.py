"""What the callbacks need from the LightningModule and the data, as runtime-checkable Protocols.

Each callback checks these in ``setup`` and says, by name, what a module or data module lacks and what that costs.
:class:`~lightning_lstm.model.module.LSTMForecaster` and :class:`~lightning_lstm.data.datamodule.TimeSeriesDataModule`
provide all of them; any other LightningModule can provide some, or none:

============================  =========================================  =========================================
contract                      used by                                    without it
============================  =========================================  =========================================
:class:`StepWindowLosses`     LossSpikeCallback: per-window report,      loss-only mode: spikes are scored from the
                              decision before the optimizer step         loss ``training_step`` returns, after the
                                                                         update; ``spikes.actions: [skip]`` is an
                                                                         error
:class:`PreClipGradNorm`      LossSpikeCallback: the gradient norm       the callback takes the norm itself (one
                              (shared with clipping and logging)         more pass over the gradients per step)
:class:`WindowDescriptions`   LossSpikeCallback: series and timestamps   spike reports name no windows
                              of the worst windows
:class:`BatchSettings`        LossSpikeCallback: the diagnosis of the    no last-batch diagnosis
                              last, smaller batch (any torch DataLoader)
:class:`ForecastData` and     ForecastPlot, ForecastWriter               ForecastPlot skips its figures with a
:class:`OriginalScale`                                                   warning; ForecastWriter is an error
============================  =========================================  =========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import torch
from lightning.pytorch.utilities import rank_zero_warn


@runtime_checkable
class StepWindowLosses(Protocol):
    """A LightningModule that keeps what its last ``training_step`` computed, per window.

    ``last_train_step`` is empty before the first step, then holds detached tensors: ``loss`` (the step's loss, a
    scalar), ``window_losses`` ``(B,)`` (each window's loss) and ``window_ids`` ``(B,)`` (ids that
    :meth:`WindowDescriptions.describe_windows` understands). A new dict every step (the callback scores each once).
    """

    last_train_step: Mapping[str, torch.Tensor]


STEP_KEYS = ("loss", "window_losses", "window_ids")
"""The keys of :attr:`StepWindowLosses.last_train_step`."""


@runtime_checkable
class PreClipGradNorm(Protocol):
    """A LightningModule that computes the total gradient norm before clipping once per optimizer step."""

    def pre_clip_grad_norm(self) -> torch.Tensor: ...


@runtime_checkable
class WindowDescriptions(Protocol):
    """Data (a LightningDataModule) that names the series and timestamps of windows by id.

    ``describe_windows`` returns one row per id with the columns ``window_id``, ``series``, ``input_start``,
    ``target_start`` and ``target_end`` (timestamps as strings).
    """

    def describe_windows(self, window_ids: np.ndarray, forecast: bool) -> pd.DataFrame: ...


@runtime_checkable
class BatchSettings(Protocol):
    """The training DataLoader (any ``torch.utils.data.DataLoader``): batch size, drop_last and its sampler.

    Shuffling is read from the sampler: a ``RandomSampler``, or any sampler with a ``shuffle`` attribute
    (``DistributedSampler``, the package's resumable sampler).
    """

    batch_size: int | None
    drop_last: bool
    sampler: Any


@runtime_checkable
class ForecastData(Protocol):
    """Data that serves windows with their truth on the original scale, and places them in time.

    ``dataset(split)`` holds dict items that ``__getitems__`` collates into a batch with ``x``, ``y_raw`` and
    ``window_id``; ``frame`` is the :class:`~lightning_lstm.data.frame.SeriesFrame`; ``hparams`` has ``lookback``
    and ``horizon``.
    """

    frame: Any
    target_columns: list[str]
    hparams: Any

    def dataset(self, split: str) -> Any: ...

    def describe_windows(self, window_ids: np.ndarray, forecast: bool) -> pd.DataFrame: ...

    def target_times(self, window_ids: np.ndarray, forecast: bool) -> np.ndarray: ...


@runtime_checkable
class OriginalScale(Protocol):
    """A LightningModule that maps its scaled ``(B, H, T)`` outputs back to the data's units for a batch."""

    def to_original_scale(self, prediction: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor: ...


def missing_members(obj: Any, protocol: type) -> list[str]:
    """The attributes and methods of ``protocol`` that ``obj`` lacks (``[]`` when ``obj`` satisfies it)."""
    names = list(getattr(protocol, "__annotations__", {}))
    names += [name for name, value in vars(protocol).items() if callable(value) and not name.startswith("_")]
    return [name for name in names if not hasattr(obj, name)]


def loader_shuffles(loader: BatchSettings) -> bool | None:
    """Whether a DataLoader shuffles, read from its sampler; ``None`` when the sampler does not say."""
    sampler = loader.sampler
    if isinstance(sampler, torch.utils.data.RandomSampler):
        return True
    if isinstance(sampler, torch.utils.data.SequentialSampler):
        return False
    shuffle = getattr(sampler, "shuffle", None)
    return None if shuffle is None else bool(shuffle)


def spike_contracts(trainer: Any, pl_module: Any, actions: set[str]) -> tuple[bool, bool]:
    """Which contracts the spike callback's module and data meet: ``(per_window, module_grad_norm)``.

    Warns once when the module has no per-window losses (loss-only mode) or the data no window descriptions.

    Raises:
        ValueError: ``skip`` is asked for but the module gives the callback no loss before the optimizer step.
    """
    name = type(pl_module).__name__
    per_window = isinstance(pl_module, StepWindowLosses)
    if not per_window and "skip" in actions:
        raise ValueError(
            f"spikes.actions: 'skip' cancels a spiking update before the optimizer step and needs the step's loss "
            f"by then, but {name} has no `last_train_step` (lightning_lstm.callbacks.contracts.StepWindowLosses). "
            "Set `self.last_train_step = {'loss': ..., 'window_losses': ..., 'window_ids': ...}` (detached tensors) "
            "in training_step, or drop 'skip' from spikes.actions."
        )
    if not per_window:
        rank_zero_warn(
            f"LossSpikeCallback runs in loss-only mode: {name} has no `last_train_step` (the step's per-window losses "
            "and window ids, lightning_lstm.callbacks.contracts.StepWindowLosses). Spikes are scored from the loss "
            "training_step returns, after the optimizer step: spike reports name no windows, 'skip' is unavailable "
            "and 'stop' keeps the spiking update. The gradient norm is still scored."
        )
    elif not isinstance(trainer.datamodule, WindowDescriptions):
        rank_zero_warn(
            f"LossSpikeCallback: the data ({type(trainer.datamodule).__name__}) has no describe_windows(window_ids, "
            "forecast) (lightning_lstm.callbacks.contracts.WindowDescriptions): spike reports name no windows."
        )
    return per_window, isinstance(pl_module, PreClipGradNorm)

"""Batches of windows gathered from one contiguous array, clipped and scaled on the fly.

The series is stored once (``O(N)`` memory, a memory-mapped ``.npy`` stays mapped); each batch gathers its ``B`` windows
with one fancy index, so nothing is materialised per window. ``__getitems__`` serves a whole batch in one call, and
:func:`collate_windows` passes it through.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from lightning_lstm.data.gaps import Gaps
from lightning_lstm.data.known_future import KnownFutureInputs
from lightning_lstm.data.scaling import transform
from lightning_lstm.data.seasonal_lags import SeasonalBase
from lightning_lstm.data.statistics import FittedStatistics
from lightning_lstm.data.windows import WindowIndex

WindowNorm = Literal["none", "last", "standard"]
SPREAD_FLOOR = 0.1  # window_norm standard: the least spread a window is divided by (scaled units of the column)


class WindowDataset(Dataset):
    """Windows of a :class:`WindowIndex` as model batches.

    A batch is a dict: ``x`` (B, L, F) scaled inputs, ``window_id`` (B,) start rows, ``series`` (B,) the series'
    position in this file, ``series_id`` (B,) its position among the training series (``series_ids``; what
    ``model.series_embedding`` reads),
    ``target_center`` / ``target_scale`` (B, T) to map outputs back to the original scale, and unless
    ``with_targets`` is False: ``y`` (B, H, T) scaled targets, ``y_raw`` (B, H, T) targets on the original scale
    (never clipped), ``naive`` (B, H, T) the last observed target, ``seasonal_naive`` (B, H, T) the value one season
    earlier and ``seasonal_valid`` (B,) where that history exists. With ``known`` (known-future inputs) also
    ``known`` (B, L + H, K): see :class:`~lightning_lstm.data.known_future.KnownFutureInputs` (seasonal lags
    included). With ``residual_season`` also ``seasonal_base`` (B, H, T): the target one season before each forecast
    step, scaled as the inputs (the baseline of ``model.residual``, :mod:`.seasonal_lags`). With ``gaps`` that
    filled some target value also ``observed`` (B, H, T): False where the target was filled, not observed
    (:class:`~lightning_lstm.data.gaps.Gaps`), so losses and scores leave it out.
    """

    def __init__(
        self,
        values: np.ndarray,
        index: WindowIndex,
        stats: FittedStatistics,
        feature_idx: list[int],
        target_idx: list[int],
        lookback: int,
        horizon: int,
        series_starts: np.ndarray,
        clip_inputs: bool = True,
        clip_targets: bool = False,
        with_targets: bool = True,
        season_length: int | None = None,
        window_norm: WindowNorm = "none",
        known: KnownFutureInputs | None = None,
        gaps: Gaps | None = None,
        residual_season: int | None = None,
        series_ids: np.ndarray | None = None,
    ) -> None:
        self.values = values
        self.known = known
        self.gaps = gaps if with_targets and gaps is not None and gaps.fills_any(list(target_idx)) else None
        self.index = index
        self.features, self.targets = _columns(feature_idx), _columns(target_idx)
        self.target_list = np.asarray(target_idx, dtype=np.int64)
        self.lookback, self.horizon = lookback, horizon
        self.series_starts = series_starts
        # (S,) int64: series s of this file is training series series_ids[s] (the identity when fitted on this file)
        self.series_ids = np.arange(len(series_starts)) if series_ids is None else np.asarray(series_ids, np.int64)
        self.clip_inputs, self.clip_targets = clip_inputs, clip_targets
        self.with_targets = with_targets
        self.season_length = season_length or None
        self.window_norm = window_norm
        self.base = SeasonalBase(values, target_idx, residual_season, lookback, horizon) if residual_season else None
        self.low = stats.clip_low.astype(np.float32)  # (S, C)
        self.high = stats.clip_high.astype(np.float32)
        self.has_bounds = bool(np.isfinite(self.low).any() or np.isfinite(self.high).any())  # else clipping is a no-op
        self.center = stats.center.astype(np.float32)
        self.scale = stats.scale.astype(np.float32)
        width = lookback + (horizon if with_targets else 0)
        self._offsets = np.arange(width, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {key: value[0] for key, value in self.__getitems__([i]).items()}

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """One batch, computed in numpy (single-threaded: no intra-op thread pool to wait for), returned as tensors."""
        starts, series = self.index.starts(np.asarray(indices))  # (B,), (B,)
        rows = starts[:, None] + self._offsets  # (B, W), W = L (+ H)
        block = np.asarray(self.values[rows], dtype=np.float32)  # (B, W, C): the batch's one gather
        low, high = self.low[series][:, None, :], self.high[series][:, None, :]  # (B, 1, C)
        center, scale = self.center[series][:, None, :], self.scale[series][:, None, :]
        inputs = block[:, : self.lookback, :]  # (B, L, C)
        if self.clip_inputs and self.has_bounds:
            inputs = np.minimum(np.maximum(inputs, low), high)
        inputs = transform(inputs, center, scale)
        if self.window_norm == "last":
            # Level-free windows: every column minus its last input value, so a trend never leaves the training range.
            level = inputs[:, -1:, :]  # (B, 1, C), scaled units
            inputs = inputs - level
            center = center + level * scale  # outputs map back to the original scale through the shifted center
        elif self.window_norm == "standard":
            # Level- and spread-free windows: each column standardised by its own lookback, as the scale moves too.
            level = inputs.mean(axis=1, keepdims=True)  # (B, 1, C), scaled units
            spread = np.maximum(inputs.std(axis=1, keepdims=True), SPREAD_FLOOR)  # (B, 1, C)
            inputs = (inputs - level) / spread
            center, scale = center + level * scale, scale * spread  # (B, 1, C): the window's own statistics
        batch = {
            "x": torch.from_numpy(np.ascontiguousarray(inputs[:, :, self.features])),  # (B, L, F)
            "window_id": torch.from_numpy(starts),
            "series": torch.from_numpy(series),
            "series_id": torch.from_numpy(self.series_ids[series]),  # (B,)
            "target_center": torch.from_numpy(np.ascontiguousarray(center[:, 0, self.targets])),  # (B, T)
            "target_scale": torch.from_numpy(np.ascontiguousarray(scale[:, 0, self.targets])),
        }
        target_center, target_scale = center[:, :, self.targets], scale[:, :, self.targets]  # (B, 1, T)
        if self.known is not None:
            known = self.known.batch(block, starts, series, target_center, target_scale)
            batch["known"] = torch.from_numpy(known)  # (B, L + H, K)
        if self.base is not None:
            bounds = (low[:, :, self.targets], high[:, :, self.targets]) if self.clip_inputs and self.has_bounds else ()
            base = self.base.batch(starts, *(bounds or (None, None)), target_center, target_scale)
            batch["seasonal_base"] = torch.from_numpy(base)  # (B, H, T)
        if self.with_targets:
            raw = block[:, self.lookback :, :]  # (B, H, C)
            clipped = np.minimum(np.maximum(raw, low), high) if self.clip_targets and self.has_bounds else raw
            batch["y"] = torch.from_numpy(np.ascontiguousarray(transform(clipped, center, scale)[:, :, self.targets]))
            batch["y_raw"] = torch.from_numpy(np.ascontiguousarray(raw[:, :, self.targets]))  # (B, H, T)
            if self.gaps is not None:
                target_rows = rows[:, self.lookback :]  # (B, H)
                batch["observed"] = torch.from_numpy(self.gaps.observed(target_rows, self.target_list.tolist()))
            last = block[:, self.lookback - 1 : self.lookback, self.targets]  # (B, 1, T)
            batch["naive"] = torch.from_numpy(np.repeat(last, self.horizon, axis=1))  # (B, H, T)
            batch.update(self._seasonal_naive(starts, series))
        return batch

    def _seasonal_naive(self, starts: np.ndarray, series: np.ndarray) -> dict[str, torch.Tensor]:
        """For target step h (1-based) the value ``m * ceil(h / m)`` steps earlier, m the season length."""
        B, H, T = len(starts), self.horizon, len(self.target_list)
        if self.season_length is None:
            nothing = torch.full((B, H, T), float("nan"))
            return {"seasonal_naive": nothing, "seasonal_valid": torch.zeros(B, dtype=torch.bool)}
        m = self.season_length
        h = np.arange(1, H + 1)
        rows = starts[:, None] + self.lookback + h - 1 - m * -(-h // m)  # (B, H)
        valid = (rows >= self.series_starts[series][:, None]).all(axis=1)
        gathered = np.asarray(self.values[np.maximum(rows, 0)], dtype=np.float32)[:, :, self.target_list]
        valid &= np.isfinite(gathered).all(axis=(1, 2))
        return {"seasonal_naive": torch.from_numpy(gathered), "seasonal_valid": torch.from_numpy(valid)}


def _columns(idx: list[int]) -> slice | np.ndarray:
    """A slice (a view, no copy) when the columns are consecutive, else an index array."""
    if len(idx) and list(idx) == list(range(idx[0], idx[0] + len(idx))):
        return slice(idx[0], idx[0] + len(idx))
    return np.asarray(idx, dtype=np.int64)


def collate_windows(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The dataset already returns a collated batch; the default collate would split it apart again."""
    return batch

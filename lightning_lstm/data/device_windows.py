"""Device-resident training windows (``data.device_resident: true``): the series on the training device, batches
gathered there by index, in exactly the order of the DataLoader path (no collation, pinning or copy per batch).

The training DataLoader is still built (its sampler decides the order) but never iterated: each epoch's window numbers
go to the device once, and every batch is one gather of ``(B, L + H, C)`` rows, clipped and scaled there with the same
float32 operations as :class:`~.dataset.WindowDataset`, so the batches are bit-identical on the CPU. A batch carries
what ``training_step`` reads (not the baselines, which only evaluation reads; ``seasonal_base`` where
``model.residual`` needs it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from lightning_lstm.data.dataset import SPREAD_FLOOR, WindowDataset
from lightning_lstm.data.scaling import transform


class DeviceWindows:
    """The training batches of ``loader`` (over a :class:`~.dataset.WindowDataset`), gathered on ``device``.

    Lightning treats it as the train DataLoader: it sets the sampler's epoch through :attr:`sampler`, counts
    :func:`len` batches, and saves and restores the loader's position through :meth:`state_dict`.
    """

    def __init__(self, loader: DataLoader, device: torch.device | str) -> None:
        dataset = loader.dataset
        if not isinstance(dataset, WindowDataset):
            raise ValueError(f"data.device_resident needs a WindowDataset, got {type(dataset).__name__}")
        if dataset.known is not None:
            raise ValueError(
                "data.device_resident does not serve known-future inputs yet: set it to false, or "
                "drop data.known_future_columns / data.calendar / data.seasonal_lags"
            )
        self.loader, self.dataset, self.device = loader, dataset, torch.device(device)
        self.batch_size, self.sampler, self.batch_sampler = loader.batch_size, loader.sampler, loader.batch_sampler
        self.drop_last = bool(loader.drop_last)
        self._tensors: dict[str, Any] | None = None

    def _build(self) -> dict[str, Any]:
        ds, device = self.dataset, self.device
        starts, series = ds.index.starts(np.arange(len(ds)))  # (N,), (N,) for every window number

        def put(array: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(array)).to(device)

        def columns(idx: slice | np.ndarray) -> slice | torch.Tensor:
            return idx if isinstance(idx, slice) else put(idx)

        return {
            "values": put(np.asarray(ds.values, dtype=np.float32)),  # (rows, C): the series, once
            "starts": put(starts), "series": put(series), "offsets": put(ds._offsets),
            "series_ids": put(ds.series_ids),  # (S,) training-series index of each series of the file
            "low": put(ds.low), "high": put(ds.high), "center": put(ds.center), "scale": put(ds.scale),  # (S, C)
            "features": columns(ds.features), "targets": columns(ds.targets),
            # (rows, T) bool, False where a target was filled (data.missing): the loss leaves those out
            "observed": None if ds.gaps is None else put(ds.gaps.observed(np.arange(len(ds.values)), ds.target_list)),
            "base_offsets": None if ds.base is None else put(ds.base.offsets),  # (H,) seasonal_base rows
        }  # fmt: skip

    def gather(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        """The batch of window numbers ``windows`` ``(B,)`` (on the device), as :class:`~.dataset.WindowDataset`."""
        t, ds = self._tensors or self._build(), self.dataset
        self._tensors = t
        starts, series = t["starts"][windows], t["series"][windows]  # (B,), (B,)
        block = t["values"][starts[:, None] + t["offsets"]]  # (B, L + H, C): the batch's one gather
        low, high = t["low"][series][:, None, :], t["high"][series][:, None, :]  # (B, 1, C)
        center, scale = t["center"][series][:, None, :], t["scale"][series][:, None, :]
        inputs = block[:, : ds.lookback, :]  # (B, L, C)
        if ds.clip_inputs and ds.has_bounds:
            inputs = torch.minimum(torch.maximum(inputs, low), high)
        inputs = transform(inputs, center, scale)
        if ds.window_norm == "last":
            level = inputs[:, -1:, :]  # (B, 1, C)
            inputs = inputs - level
            center = center + level * scale
        elif ds.window_norm == "standard":
            level = inputs.mean(dim=1, keepdim=True)  # (B, 1, C)
            spread = inputs.std(dim=1, keepdim=True, correction=0).clamp(min=SPREAD_FLOOR)  # as numpy's std
            inputs = (inputs - level) / spread
            center, scale = center + level * scale, scale * spread
        raw = block[:, ds.lookback :, :]  # (B, H, C)
        clipped = torch.minimum(torch.maximum(raw, low), high) if ds.clip_targets and ds.has_bounds else raw
        targets = t["targets"]
        batch = {
            "x": inputs[:, :, t["features"]].contiguous(),  # (B, L, F)
            "y": transform(clipped, center, scale)[:, :, targets].contiguous(),  # (B, H, T)
            "window_id": starts,
            "series": series,
            "series_id": t["series_ids"][series],  # (B,)
            "target_center": center[:, 0, targets].contiguous(),  # (B, T)
            "target_scale": scale[:, 0, targets].contiguous(),
        }
        if t["base_offsets"] is not None:  # as SeasonalBase.batch: clipped like the inputs, scaled like the targets
            base = t["values"][starts[:, None] + t["base_offsets"]][:, :, targets]  # (B, H, T)
            if ds.clip_inputs and ds.has_bounds:
                base = torch.minimum(torch.maximum(base, low[:, :, targets]), high[:, :, targets])
            batch["seasonal_base"] = transform(base, center[:, :, targets], scale[:, :, targets]).contiguous()
        if t["observed"] is not None:
            batch["observed"] = t["observed"][starts[:, None] + t["offsets"][ds.lookback :]]  # (B, H, T)
        return batch

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        # One pass of the sampler (advancing its epoch as the loader's would), one copy of the order to the device.
        order = torch.as_tensor(np.fromiter(iter(self.sampler), dtype=np.int64)).to(self.device)  # (N_rank,)
        for batch in order.split(self.batch_size):
            if self.drop_last and len(batch) < self.batch_size:
                return
            yield self.gather(batch)

    def __len__(self) -> int:
        return len(self.loader)

    def state_dict(self) -> dict[str, Any]:
        return self.loader.state_dict() if hasattr(self.loader, "state_dict") else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if hasattr(self.loader, "load_state_dict"):
            self.loader.load_state_dict(state)


def train_loader(loader: DataLoader, trainer: Any, device_resident: bool) -> DataLoader | DeviceWindows:
    """``loader``, or its :class:`DeviceWindows` on the trainer's device when ``device_resident``."""
    if not device_resident:
        return loader
    device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
    return DeviceWindows(loader, device)

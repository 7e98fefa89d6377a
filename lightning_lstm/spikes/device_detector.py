"""The spike detector on the training device: the same decisions as :class:`~.detector.SpikeDetector`, no host sync.

Each update is a fixed sequence of torch ops on 0-d tensors and one ``(window,)`` float64 ring buffer: the median and
the MAD come from sorting the window (empty slots hold ``inf`` and sort last), so nothing waits for the device.
Float64 and the same formulas (median of the middle pair, ``1.4826 * MAD`` floored) give bit-identical scores to the
pure-Python detector. Only :meth:`state_dict` and :attr:`num_spikes` read values back (checkpoint and report time).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from lightning_lstm.robust import MAD_TO_SIGMA
from lightning_lstm.spikes.detector import SpikeDetector, SpikeVerdict


class DeviceVerdict(NamedTuple):
    """:class:`~.detector.SpikeVerdict`'s fields as 0-d tensors on the device (``is_spike`` and ``warm`` bool)."""

    is_spike: torch.Tensor
    score: torch.Tensor
    baseline: torch.Tensor
    spread: torch.Tensor
    value: torch.Tensor
    warm: torch.Tensor

    def stacked(self) -> torch.Tensor:
        """The six fields as one float64 ``(6,)`` tensor, in field order (one copy to the host instead of six)."""
        return torch.stack([t.to(torch.float64) for t in self])

    @staticmethod
    def from_host(values: list[float]) -> SpikeVerdict:
        """The host verdict from :meth:`stacked`'s values."""
        spike, score, baseline, spread, value, warm = values
        return SpikeVerdict(bool(spike), score, baseline, spread, value, bool(warm))


def _middle(ordered: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
    """Median of the first ``n`` (a 0-d tensor >= 1) values of a sorted ``(window,)`` tensor."""
    last = ordered.numel() - 1
    hi = ordered[(n // 2).clamp(max=last)]
    lo = ordered[(n // 2 - 1).clamp(min=0, max=last)]
    return torch.where(n % 2 == 1, hi, 0.5 * (lo + hi))


class DeviceSpikeDetector(SpikeDetector):
    """:class:`~.detector.SpikeDetector` (same arguments and rules) whose window lives on the device of its inputs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._buffer = torch.full((self.window,), math.inf, dtype=torch.float64)  # ring buffer; inf: empty
        self._count = torch.zeros((), dtype=torch.long)  # values in the window
        self._head = torch.zeros((), dtype=torch.long)  # the next slot written (the oldest value once full)
        self._spikes = torch.zeros((), dtype=torch.long)
        self._slots = torch.arange(self.window)

    def _to(self, device: torch.device) -> None:
        if self._buffer.device != device:
            for name in ("_buffer", "_count", "_head", "_spikes", "_slots"):
                setattr(self, name, getattr(self, name).to(device))

    def update(self, value: torch.Tensor | float) -> DeviceVerdict:  # type: ignore[override]
        """Scores ``value`` (a 0-d tensor on the training device) and adds it, clipped if a spike, to the window."""
        value = torch.as_tensor(value).to(torch.float64)  # () on the device
        self._to(value.device)
        n, finite = self._count, torch.isfinite(value)
        warm = (n > 0) & (self.steps_seen >= self.warmup)
        self.steps_seen += 1
        valid = self._slots < n  # (window,): filled slots (the ring fills 0, 1, ... before it wraps)
        median = _middle(torch.sort(self._buffer).values, n.clamp(min=1))
        deviations = torch.where(valid, (self._buffer - median).abs(), math.inf)  # (window,)
        mad = _middle(torch.sort(deviations).values, n.clamp(min=1))
        floor = torch.clamp(self.relative_floor * median.abs() / self.threshold, min=self.min_spread)
        spread = torch.maximum(MAD_TO_SIGMA * mad, floor)
        empty = n == 0
        median, spread = torch.where(empty, math.nan, median), torch.where(empty, math.nan, spread)
        score = (value - median) / spread
        upward = (score >= self.threshold) & (self.mode != "lower")
        downward = (score <= -self.threshold) & (self.mode != "upper")
        is_spike = torch.where(finite, warm & (upward | downward), True)
        score = torch.where(finite, score, math.inf)
        bound = self.threshold * spread
        clipped = torch.where(upward, torch.minimum(value, median + bound), torch.maximum(value, median - bound))
        kept = torch.where(is_spike, clipped, value)
        # A non-finite value never enters the window: rewrite the slot with what it holds, leave head and count.
        slot = self._head
        self._buffer = self._buffer.index_put((slot.view(1),), torch.where(finite, kept, self._buffer[slot]).view(1))
        step = finite.long()
        self._head = (self._head + step) % self.window
        self._count = torch.clamp(self._count + step, max=self.window)
        self._spikes = self._spikes + is_spike.long()
        return DeviceVerdict(is_spike, score, median, spread, value, warm)

    # -- host views (checkpoints, reports, tests) ------------------------------------------------------------------
    @property
    def num_spikes(self) -> int:  # type: ignore[override]
        return int(self._spikes)

    @num_spikes.setter
    def num_spikes(self, count: int) -> None:
        self._spikes = torch.tensor(int(count), device=getattr(self, "_buffer", torch.empty(0)).device)

    def values(self) -> list[float]:
        """The window in arrival order (a host read)."""
        count, head = int(self._count), int(self._head)
        buffer = self._buffer.cpu().tolist()
        return buffer[:count] if count < self.window else buffer[head:] + buffer[:head]

    @property
    def warm(self) -> bool:
        return self.steps_seen >= self.warmup and int(self._count) > 0

    def reset(self) -> None:
        self._buffer.fill_(math.inf)
        self._count.zero_(), self._head.zero_(), self._spikes.zero_()
        self.steps_seen = 0

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["values"] = self.values()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)  # validates; fills the host deque with the newest `window` values
        device = self._buffer.device
        kept = list(self._values)
        buffer = torch.full((self.window,), math.inf, dtype=torch.float64)
        buffer[: len(kept)] = torch.tensor(kept, dtype=torch.float64)
        self._buffer = buffer.to(device)
        self._count = torch.tensor(len(kept), device=device)
        self._head = torch.tensor(len(kept) % self.window, device=device)
        self._values.clear(), self._sorted.clear()  # the device buffer is the window now


def as_kind(detector: SpikeDetector, on_device: bool) -> SpikeDetector:
    """``detector`` itself, or one of the other kind (host <-> device) with the same settings and state."""
    kind = DeviceSpikeDetector if on_device else SpikeDetector
    if type(detector) is kind:
        return detector
    settings = (detector.window, detector.warmup, detector.threshold, detector.relative_floor, detector.mode)
    other = kind(*settings, min_spread=detector.min_spread)
    other.load_state_dict(detector.state_dict())
    return other

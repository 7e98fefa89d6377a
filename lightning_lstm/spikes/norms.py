"""The distribution of a run's gradient norms (before clipping) and how often clipping engaged. Pure Python.

The diagnosis takes a clip value from this distribution (its 95th percentile) and refuses to advise one that would
never engage or would act on ordinary steps. Every norm is kept up to ``capacity``; beyond it every second one is
dropped and then only every second new one kept, so memory stays bounded and the sample stays spread over the run.
"""

from __future__ import annotations

import math
from array import array
from typing import Any

QUANTILES = (0.5, 0.9, 0.95, 0.99, 1.0)


class GradNormHistory:
    """Fed once per optimizer step with the pre-clip gradient norm and the trainer's clip value.

    Attributes:
        steps: norms seen (finite or not).
        clipped: steps whose norm exceeded the clip value (clipping rescaled them).
    """

    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 2:
            raise ValueError(f"capacity must be >= 2, got {capacity}")
        self.capacity = capacity
        self.steps = 0
        self.clipped = 0
        self._sample = array("d")
        self._stride = 1

    def update(self, norm: float, clip: float | None) -> None:
        self.steps += 1
        if clip and norm > clip:
            self.clipped += 1
        if not math.isfinite(norm) or (self.steps - 1) % self._stride:
            return
        self._sample.append(norm)
        if len(self._sample) >= self.capacity:
            self._sample = self._sample[::2]
            self._stride *= 2

    def quantiles(self) -> dict[str, float]:
        """``{"q50": ..., "q90": ..., "q95": ..., "q99": ..., "q100": ...}`` of the finite norms (empty if none)."""
        ordered = sorted(self._sample)
        if not ordered:
            return {}
        last = len(ordered) - 1
        return {f"q{round(q * 100)}": _at(ordered, q * last) for q in QUANTILES}

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "clipped": self.clipped, "sample": list(self._sample), "stride": self._stride}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps, self.clipped = int(state["steps"]), int(state["clipped"])
        self._sample, self._stride = array("d", state["sample"]), int(state["stride"])


def _at(ordered: list[float], position: float) -> float:
    """Linear interpolation between the two order statistics around ``position`` (numpy's default method)."""
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median_or_none(values: list[float | None]) -> float | None:
    """The median of the finite ``values`` (the loss detector's rolling window: the loss the run ended at)."""
    finite = sorted(v for v in values if v is not None and math.isfinite(v))
    return _at(finite, (len(finite) - 1) / 2) if finite else None

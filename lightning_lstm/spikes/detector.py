"""Robust, streaming spike scoring of one scalar per training step (the loss, or the gradient norm), on the host or
on the training device. No Lightning here.

:class:`SpikeDetector` is pure Python on purpose (numpy's per-call overhead alone exceeds the whole update at
``window=50``): the window is kept in arrival order (a ring buffer) and sorted (``bisect``), so the median is an index
and the MAD a binary search. :class:`DeviceSpikeDetector` takes the same decisions on the device with no host sync:
fixed torch ops on 0-d tensors and one ``(window,)`` float64 ring buffer (empty slots hold ``inf`` and sort last);
float64 and the same formulas give bit-identical scores. Only its ``state_dict`` and ``num_spikes`` read values back.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, get_args

import torch

from lightning_lstm.robust import MAD_TO_SIGMA, sorted_mad

Mode = Literal["upper", "lower", "both"]

_MODES = get_args(Mode)


@dataclass(frozen=True, slots=True)
class SpikeVerdict:
    """The outcome of scoring one value.

    Attributes:
        is_spike: whether the value is a spike (always ``True`` for a non-finite value, even during warm-up).
        score: robust z-score ``(value - baseline) / spread``, signed (a value below the baseline scores negative);
            ``inf`` for a non-finite value; ``nan`` when there was no baseline yet.
        baseline: the median of the rolling window before this value (``nan`` if the window was empty).
        spread: the robust scale used for the score, ``1.4826 * MAD`` with its floor (``nan`` if the window was empty).
        value: the value that was scored.
        warm: whether the warm-up was over, i.e. whether a finite value could have been a spike.
    """

    is_spike: bool
    score: float
    baseline: float
    spread: float
    value: float
    warm: bool


class SpikeDetector:
    """Scores each value against the median and MAD of the last ``window`` accepted values.

    A finite value is a spike when the detector is warm (``warmup`` values observed) and, for ``mode="upper"``,
    ``score = (value - median) / spread >= threshold`` with ``spread = max(1.4826 * MAD, relative_floor * |median|
    / threshold, min_spread)``. The floor does two jobs: a spike must exceed the median by at least
    ``relative_floor * |median|`` (``score >= threshold`` implies it, so tiny absolute wiggles on a flat loss never
    count, and no separate test is needed), and a perfectly flat stream (MAD == 0) followed by a real jump scores a
    finite, readable z (a 2x jump at the defaults scores 60) instead of dividing by zero.

    Trend: the median of a falling window lags *above* the newest values, so a steadily falling loss scores
    negative and, with upward-only scoring, cannot raise false spikes; a step down (a plateau ending) likewise only
    lowers scores. The trend widens the MAD a little, which costs some sensitivity but no false alarms.

    Baseline hygiene: a non-finite value never enters the window. A finite spike enters it *clipped* to the
    decision boundary ``median + threshold * spread`` (winsorised) rather than being dropped: its influence on the
    median and MAD is bounded like that of an ordinary high value, yet a genuine, sustained upward level shift is
    absorbed after roughly ``window / 2`` steps instead of being flagged forever (which dropping spikes would do,
    since the window would then never see the new level). Values seen during the warm-up enter unclipped: they
    are what the baseline is made of.

    Warm-up counts observed values (global steps, if called once per step); the detector knows nothing about
    epochs, so it is never re-applied after an epoch boundary or a resume from :meth:`state_dict`.

    Args:
        window: how many accepted values form the rolling baseline.
        warmup: how many values to observe before a finite value may be a spike.
        threshold: robust z-score at or above which a value may be a spike.
        relative_floor: a spike must exceed the median by at least this fraction of ``|median|``.
        mode: ``"upper"`` (only upward deviations count), ``"lower"`` or ``"both"``.
        min_spread: absolute floor of the spread, guarding a window of exact zeros.

    Raises:
        ValueError: on an invalid argument.
    """

    def __init__(
        self,
        window: int = 50,
        warmup: int = 20,
        threshold: float = 6.0,
        relative_floor: float = 0.1,
        mode: Mode = "upper",
        min_spread: float = 1e-12,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {warmup}")
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        if not relative_floor >= 0:
            raise ValueError(f"relative_floor must be >= 0, got {relative_floor}")
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if not min_spread > 0:
            raise ValueError(f"min_spread must be > 0, got {min_spread}")
        self.window = int(window)
        self.warmup = int(warmup)
        self.threshold = float(threshold)
        self.relative_floor = float(relative_floor)
        self.mode: Mode = mode
        self.min_spread = float(min_spread)
        self._values: deque[float] = deque(maxlen=self.window)
        self._sorted: list[float] = []
        self.steps_seen = 0
        self.num_spikes = 0

    def update(self, value: float) -> SpikeVerdict:
        """Scores ``value`` against the current baseline, then adds it (clipped if a spike) to the window.

        Args:
            value: the step's loss or gradient norm (a Python float, or anything ``float()`` accepts).

        Returns:
            The verdict for this value.
        """
        value = float(value)
        warm = self.steps_seen >= self.warmup and len(self._values) > 0
        self.steps_seen += 1
        if not math.isfinite(value):
            self.num_spikes += 1
            baseline, spread = self._baseline() if self._values else (math.nan, math.nan)
            return SpikeVerdict(True, math.inf, baseline, spread, value, warm)
        if not self._values:
            self._push(value)
            return SpikeVerdict(False, math.nan, math.nan, math.nan, value, warm)

        baseline, spread = self._baseline()
        deviation = value - baseline
        score = deviation / spread
        upward = self.mode != "lower" and score >= self.threshold
        downward = self.mode != "upper" and score <= -self.threshold
        is_spike = warm and (upward or downward)

        if is_spike:
            self.num_spikes += 1
            bound = self.threshold * spread
            value_kept = min(value, baseline + bound) if upward else max(value, baseline - bound)
            self._push(value_kept)
        else:
            self._push(value)
        return SpikeVerdict(is_spike, score, baseline, spread, value, warm)

    def _push(self, value: float) -> None:
        """Appends ``value`` to the window, dropping the oldest value from both views when full."""
        if len(self._values) == self.window:
            del self._sorted[bisect_left(self._sorted, self._values[0])]
        self._values.append(value)
        insort(self._sorted, value)

    def _baseline(self) -> tuple[float, float]:
        """Median and floored robust spread of the (non-empty) window."""
        ordered = self._sorted
        n = len(ordered)
        mid = n // 2
        median = ordered[mid] if n % 2 else 0.5 * (ordered[mid - 1] + ordered[mid])
        mad = sorted_mad(ordered, median, mid)  # ordered[:mid] <= median <= ordered[mid:]
        floor = max(self.relative_floor * abs(median) / self.threshold, self.min_spread)
        return median, max(MAD_TO_SIGMA * mad, floor)

    @property
    def warm(self) -> bool:
        """Whether the next finite value may be a spike."""
        return self.steps_seen >= self.warmup and len(self._values) > 0

    def state_dict(self) -> dict[str, Any]:
        """The detector's state as plain Python numbers, strings and lists.

        Safe for a Lightning checkpoint loaded with ``torch.load(..., weights_only=True)``.
        """
        return {
            "window": self.window,
            "warmup": self.warmup,
            "threshold": self.threshold,
            "relative_floor": self.relative_floor,
            "mode": self.mode,
            "min_spread": self.min_spread,
            "values": list(self._values),
            "steps_seen": self.steps_seen,
            "num_spikes": self.num_spikes,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores the window and the counters saved by :meth:`state_dict`.

        The configuration of this instance wins over the saved one, so thresholds can be changed on resume; if
        this instance's ``window`` is smaller, only the newest saved values are kept.

        Args:
            state: a dict from :meth:`state_dict`.

        Raises:
            KeyError: if ``values``, ``steps_seen`` or ``num_spikes`` is missing.
            ValueError: if the saved window holds a non-finite value.
        """
        values = [float(v) for v in state["values"]]
        if not all(math.isfinite(v) for v in values):
            raise ValueError("a saved spike-detector window must hold only finite values")
        self._values = deque(values, maxlen=self.window)
        self._sorted = sorted(self._values)
        self.steps_seen = int(state["steps_seen"])
        self.num_spikes = int(state["num_spikes"])

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(window={self.window}, warmup={self.warmup}, threshold={self.threshold}, "
            f"relative_floor={self.relative_floor}, mode={self.mode!r}, steps_seen={self.steps_seen}, "
            f"num_spikes={self.num_spikes})"
        )


class DeviceVerdict(NamedTuple):
    """:class:`SpikeVerdict`'s fields as 0-d tensors on the device (``is_spike`` and ``warm`` bool)."""

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
    """:class:`SpikeDetector` (same arguments and rules) whose window lives on the device of its inputs."""

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

"""The run's one per-step history, fed by the spike callback at every scored step: what the figure, TensorBoard,
``spikes.json``, the diagnosis and the doctor read.

:class:`RunHistory` keeps, per step, the loss with the detector's baseline and threshold, the pre-clip gradient norm,
the learning rate and the epoch (arrays that grow by doubling, 36 bytes a step), with :class:`LearningRateHistory`
and :class:`GradNormHistory` as the diagnosis' summaries. All of it travels in the checkpoint with the callback's
state, so a resumed fit draws and diagnoses the whole run. No Lightning.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lightning_lstm.spikes.detector import SpikeVerdict

MAX_INCREASES = 10_000
"""At most this many learning-rate rise steps are kept (a cyclic schedule rises every step)."""
QUANTILES = (0.5, 0.9, 0.95, 0.99, 1.0)
"""The gradient-norm quantiles the diagnosis reads (``q50`` .. ``q100``)."""


@dataclass
class LearningRateHistory:
    """Fed once per optimizer step with the first parameter group's learning rate.

    Attributes:
        initial: the learning rate of the first step seen (``None`` before it).
        highest: the highest learning rate seen.
        previous: the learning rate of the last step seen.
        increased_steps: global steps at which the learning rate rose above the previous step's.
    """

    initial: float | None = None
    highest: float = 0.0
    previous: float | None = None
    increased_steps: list[int] = field(default_factory=list)

    def update(self, lr: float, step: int) -> None:
        if self.initial is None:
            self.initial = lr
        rose = self.previous is not None and lr > self.previous * (1 + 1e-9)
        if rose and len(self.increased_steps) < MAX_INCREASES:
            self.increased_steps.append(step)
        self.previous, self.highest = lr, max(self.highest, lr)

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint keys of the spike callback's state that hold the history (unchanged since version 0.1)."""
        return {
            "lr_initial": self.initial,
            "lr_max": self.highest,
            "lr_previous": self.previous,
            "lr_increased_steps": list(self.increased_steps),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.initial, self.highest = state["lr_initial"], state["lr_max"]
        self.previous = state["lr_previous"]
        self.increased_steps = list(state["lr_increased_steps"])


class GradNormHistory:
    """Fed once per optimizer step with the pre-clip gradient norm and the trainer's clip value.

    The diagnosis takes a clip value from this distribution (its 95th percentile). Every norm is kept up to
    ``capacity``; beyond it every second one is dropped and then only every second new one kept, so memory stays
    bounded and the sample stays spread over the run.

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


_COLUMNS = {"steps": np.int64, "values": np.float32, "epochs": np.int32, "grad_norms": np.float32, "lrs": np.float64}
"""The per-step arrays: ``values`` is ``(n, 3)`` loss, baseline, threshold (NaN where undefined: the warm-up)."""


class RunHistory:
    """Every scored step of the run: loss, the loss detector's baseline (rolling median) and threshold (in the loss's
    units), the pre-clip gradient norm, the learning rate and the epoch; plus the two summaries.

    Attributes:
        size: steps recorded.
        steps, values, epochs, grad_norms, lrs: the per-step arrays (see :data:`_COLUMNS`), valid up to ``size``.
        learning_rate: the learning-rate summary.
        norms: the gradient-norm summary.
    """

    def __init__(self) -> None:
        self.size = 0
        self.learning_rate = LearningRateHistory()
        self.norms = GradNormHistory()
        for name, dtype in _COLUMNS.items():
            setattr(self, name, np.empty((0, 3) if name == "values" else 0, dtype))

    def append(
        self, step: int, epoch: int, verdict: SpikeVerdict, threshold: float, grad_norm: float, lr: float, clip
    ) -> None:
        """One scored step: ``verdict`` from the loss detector, ``threshold`` its z-score threshold, ``clip`` the
        trainer's ``gradient_clip_val`` (``None``: off)."""
        self.learning_rate.update(lr, step)
        self.norms.update(grad_norm, clip)
        i = self.size
        if i == len(self.steps):
            capacity = max(1024, 2 * i)
            for name in _COLUMNS:
                setattr(self, name, np.resize(getattr(self, name), (capacity, 3) if name == "values" else capacity))
        line = verdict.baseline + threshold * verdict.spread if verdict.warm else float("nan")
        self.steps[i], self.epochs[i], self.grad_norms[i], self.lrs[i] = step, epoch, grad_norm, lr
        self.values[i] = (verdict.value, verdict.baseline, line)
        self.size += 1

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(steps, loss, baseline, threshold, epochs)`` of the steps recorded so far (views, no copies)."""
        values = self.values[: self.size]
        return self.steps[: self.size], values[:, 0], values[:, 1], values[:, 2], self.epochs[: self.size]

    def per_step(self) -> dict[str, list]:
        """``steps``, ``epochs``, ``losses``, ``grad_norms`` and ``lrs`` as plain lists (the doctor's result file)."""
        n = self.size
        steps, epochs = self.steps[:n].tolist(), self.epochs[:n].tolist()
        return {"steps": steps, "epochs": epochs, "losses": self.values[:n, 0].tolist(),
                "grad_norms": self.grad_norms[:n].tolist(), "lrs": self.lrs[:n].tolist()}  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        """The spike callback's checkpoint keys for the history: ``lr_*``, ``grad_norms`` and ``loss_history`` (plain
        numbers and tensors: a checkpoint loads them with ``weights_only=True``)."""
        steps = {name: torch.from_numpy(getattr(self, name)[: self.size].copy()) for name in _COLUMNS}
        return {**self.learning_rate.state_dict(), "grad_norms": self.norms.state_dict(), "loss_history": steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict` from the callback's state. Checkpoints written before the norm history or the
        loss history were kept have no ``grad_norms`` or ``loss_history`` (those start empty); those written before
        the per-step norm and learning rate were kept have them as NaN."""
        self.learning_rate.load_state_dict(state)
        if "grad_norms" in state:
            self.norms.load_state_dict(state["grad_norms"])
        steps = state.get("loss_history")
        if steps is None:
            return
        self.size = len(steps["steps"])
        for name, dtype in _COLUMNS.items():
            values = np.asarray(steps[name], dtype=dtype) if name in steps else np.full(self.size, np.nan, dtype)
            setattr(self, name, (values.reshape(-1, 3) if name == "values" else values).copy())

"""Spike decisions on their way to the host: taken on the device and read one step late, or scored there in batches.

**On the device** (:class:`DeferredDecisions`): each step's two verdicts and its spike flag, packed in one ``(13,)``
tensor, are copied to (pinned, on CUDA) host memory behind an event and handed back at the next step's end, the
epoch's end or before a checkpoint: by then the copy has long finished, so reading it waits for nothing.

**On the host** (:class:`UnscoredSteps`): with nothing to decide before the update and no batch to keep, the steps'
loss and gradient-norm tensors wait, and every :data:`HOST_BATCH` steps are read in one ``stack`` + ``tolist`` and
scored in one loop: scored one by one after each step, the same Python work cost ~10x its warm time (~75 us against
~4 us per detector update on a 2-core VM), about 2% of the default model's step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from lightning_lstm.spikes.detector import DeviceVerdict, SpikeVerdict


def pack(loss: DeviceVerdict, grad: DeviceVerdict, spike: torch.Tensor) -> torch.Tensor:
    """``(6,) loss verdict | (6,) grad verdict | spike flag`` as one float64 ``(13,)`` tensor on the device."""
    return torch.cat([loss.stacked(), grad.stacked(), spike.to(torch.float64).view(1)])


def unpack(values: list[float]) -> tuple[SpikeVerdict, SpikeVerdict, bool]:
    """The host verdicts and the spike flag from :func:`pack`'s values."""
    return DeviceVerdict.from_host(values[:6]), DeviceVerdict.from_host(values[6:12]), bool(values[12])


@dataclass
class StepContext:
    """What acting on one scored step needs from that step, besides its verdicts (kept while the verdicts travel).

    Attributes:
        lr: the first parameter group's learning rate.
        step: the global step.
        batch_idx: the batch index within the epoch.
        window_step: the module's ``last_train_step`` (per-window losses and ids), or ``None`` in loss-only mode.
        batch: the batch (for ``save_batch`` and the batch size), or ``None`` once not needed.
        log_step: whether the detector's TensorBoard series are written at this step.
    """

    lr: float
    step: int
    batch_idx: int
    window_step: Any
    batch: Any
    log_step: bool


@dataclass
class PendingDecision:
    """One step's packed decision on its way to the host, and its context."""

    host: torch.Tensor
    event: Any  # a torch.cuda.Event, or None where the copy was synchronous (CPU)
    context: StepContext

    @classmethod
    def start(cls, packed: torch.Tensor, context: StepContext) -> PendingDecision:
        if packed.device.type == "cuda":
            host = torch.empty(packed.shape, dtype=packed.dtype, pin_memory=True)
            host.copy_(packed, non_blocking=True)  # (13,) device -> pinned host, queued behind the step's kernels
            event = torch.cuda.Event()
            event.record()
            return cls(host, event, context)
        return cls(packed.to("cpu", non_blocking=True), None, context)  # CPU: the tensor itself; others: a copy

    def values(self) -> list[float]:
        """The packed values on the host (waits for the copy only if it has not finished yet)."""
        if self.event is not None:
            self.event.synchronize()
        return self.host.tolist()


class DeferredDecisions:
    """Decisions in flight, oldest first: :meth:`due` hands back those the host may read now without waiting."""

    def __init__(self) -> None:
        self._queue: list[PendingDecision] = []

    def start(self, packed: torch.Tensor, context: StepContext) -> None:
        self._queue.append(PendingDecision.start(packed, context))

    def due(self, keep_last: bool) -> list[tuple[PendingDecision, list[float]]]:
        """Pops the decisions to act on: all but the newest (one step late), or all (``keep_last=False``)."""
        count = len(self._queue) - 1 if keep_last else len(self._queue)
        ready, self._queue = self._queue[: max(count, 0)], self._queue[max(count, 0) :]
        return [(pending, pending.values()) for pending in ready]

    def __len__(self) -> int:
        return len(self._queue)


HOST_BATCH = 32  # steps scored together on the host: spikes are reported at most this many steps late


class UnscoredStep(NamedTuple):
    """One step waiting for the host detectors: its 0-d loss and gradient-norm tensors and its context."""

    loss: torch.Tensor
    grad_norm: torch.Tensor
    context: StepContext


class UnscoredSteps:
    """Steps queued for the host detectors, read in one batch (one device-to-host copy per :data:`HOST_BATCH`)."""

    def __init__(self) -> None:
        self._queue: list[UnscoredStep] = []

    def add(self, loss: torch.Tensor, grad_norm: torch.Tensor, context: StepContext) -> None:
        self._queue.append(UnscoredStep(loss, grad_norm, context))

    def due(self, all_of_them: bool) -> list[tuple[float, float, StepContext]]:
        """Pops ``(loss, grad norm, context)`` of every queued step, oldest first, once a batch is full (or always)."""
        if not self._queue or (len(self._queue) < HOST_BATCH and not all_of_them):
            return []
        queue, self._queue = self._queue, []
        losses = torch.stack([step.loss.float() for step in queue]).tolist()  # (n,), one read for the batch
        norms = torch.stack([step.grad_norm.float() for step in queue]).tolist()
        return [(loss, norm, step.context) for loss, norm, step in zip(losses, norms, queue, strict=True)]

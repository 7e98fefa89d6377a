"""Counting the host reads of tensor values (device-to-host syncs on a GPU) per training step, on any device.

On a GPU, ``Tensor.item()``, ``bool(t)``, ``t.tolist()``, ``t.cpu()``, ``float(t)`` and ``t.numpy()`` wait for the
device queue to drain. On the CPU nothing waits, but the same calls mark the places that would: this counter wraps
them on ``torch.Tensor`` while it is armed, so a CPU test can assert that the training hot path makes none
(``HostSyncCounter().per_step``: global step -> reads).

The window is Lightning's optimizer closure: ``training_step``, backward, ``on_before_optimizer_step`` hooks and
clipping, up to the parameter update (the optimizer's own bookkeeping is the same in any loop and not counted).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import lightning.pytorch as pl
import torch

READS = ("item", "__bool__", "tolist", "cpu", "__float__", "numpy")


class HostSyncCounter(pl.Callback):
    """Counts :data:`READS` calls per global step inside the optimizer closure (``training_step`` to the update)."""

    def __init__(self) -> None:
        self.per_step: dict[int, int] = {}
        self.by_name: Counter[str] = Counter()
        self._armed_step: int | None = None
        self._originals: dict[str, Any] = {}
        self._hooked: set[int] = set()

    # -- wrapping ---------------------------------------------------------------------------------------------------
    def install(self) -> None:
        """Wraps the reads on ``torch.Tensor`` (counted only while armed); :meth:`uninstall` restores them."""
        if self._originals:
            return
        for name in READS:
            original = getattr(torch.Tensor, name)
            self._originals[name] = original

            def counted(tensor, *args, _original=original, _name=name, **kwargs):
                if self._armed_step is not None:
                    self.per_step[self._armed_step] = self.per_step.get(self._armed_step, 0) + 1
                    self.by_name[_name] += 1
                return _original(tensor, *args, **kwargs)

            setattr(torch.Tensor, name, counted)

    def uninstall(self) -> None:
        for name, original in self._originals.items():
            setattr(torch.Tensor, name, original)
        self._originals.clear()
        self._armed_step = None

    def arm(self, step: int) -> None:
        """Counts reads for ``step`` from now on (a hand-written loop arms and disarms around its own step)."""
        self.per_step.setdefault(step, 0)
        self._armed_step = step

    def disarm(self) -> None:
        self._armed_step = None

    def _wrap_step(self, trainer: pl.Trainer, optimizer: torch.optim.Optimizer) -> None:
        original = optimizer.step

        def step(closure=None, **kwargs):
            if closure is None:
                return original(**kwargs)

            def counted_closure():
                self.arm(trainer.global_step)
                try:
                    return closure()
                finally:
                    self.disarm()

            return original(closure=counted_closure, **kwargs)

        optimizer.step = step

    # -- hooks ------------------------------------------------------------------------------------------------------
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.install()
        for optimizer in trainer.optimizers:
            if id(optimizer) not in self._hooked:
                self._wrap_step(trainer, optimizer)
                self._hooked.add(id(optimizer))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.uninstall()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.uninstall()

    def counts(self, steps: list[int]) -> list[int]:
        """Reads at each of ``steps`` (0 for a step that made none)."""
        return [self.per_step.get(step, 0) for step in steps]

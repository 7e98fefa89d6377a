"""Per-batch hooks that a callback leaves as Lightning's empty method are not dispatched at all.

Lightning dispatches every hook to every callback: for each callback and each per-batch hook (six per training step)
it builds the profiler's action name from the callback's ``state_key``, enters ``trainer.profiler.profile`` and calls
the method, even when that method is :class:`~lightning.pytorch.callbacks.Callback`'s own empty one. At 2-3 us a
dispatch, a fit's six callbacks (of which most act only at epoch ends) cost ~0.08 ms per step that way: as much as a
small model's whole step on a GPU (issue 24).

Lightning's dispatch (``lightning.pytorch.trainer.call._call_callback_hooks``, 2.x) skips a hook attribute that is
not callable, so :func:`skip_idle_hooks` shadows each inherited empty per-batch hook with an instance attribute
``None``. What a callback does is unchanged: a hook its class (or a parent other than ``Callback``) implements stays.
With a profiler other than the default pass-through one, nothing is shadowed, so the profiler's report still lists
every callback's hooks.
"""

from __future__ import annotations

from collections.abc import Iterable

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.profilers import PassThroughProfiler

STEP_HOOKS = (
    "on_train_batch_start",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "on_train_batch_end",
)
"""The callback hooks Lightning dispatches once per training step, in their order."""

BATCH_HOOKS = (
    *STEP_HOOKS,
    "on_validation_batch_start",
    "on_validation_batch_end",
    "on_test_batch_start",
    "on_test_batch_end",
    "on_predict_batch_start",
    "on_predict_batch_end",
)
"""The hooks Lightning dispatches once per batch or optimizer step."""


def idle_batch_hooks(callback: Callback) -> list[str]:
    """The per-batch hooks ``callback`` inherits unchanged from ``Callback`` (and has not set on the instance)."""
    return [
        hook
        for hook in BATCH_HOOKS
        if hook not in vars(callback) and getattr(type(callback), hook, None) is getattr(Callback, hook)
    ]


def skip_idle_hooks(trainer: pl.Trainer, callbacks: Iterable[Callback] | None = None) -> int:
    """Shadows the idle per-batch hooks of ``callbacks`` (default: the trainer's) with ``None``; returns how many.

    Nothing is shadowed when the trainer profiles (a profiler other than ``PassThroughProfiler``)."""
    if not isinstance(trainer.profiler, PassThroughProfiler):
        return 0
    shadowed = 0
    for callback in trainer.callbacks if callbacks is None else callbacks:
        for hook in idle_batch_hooks(callback):
            setattr(callback, hook, None)
            shadowed += 1
    return shadowed

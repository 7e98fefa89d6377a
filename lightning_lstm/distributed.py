"""Process-group primitives for DDP: is there more than one process, rank zero's object for all, one object per rank.

The bottom layer: generic, no import from the rest of the package. The data module fits its statistics once with
:func:`broadcast_from_rank_zero`; callbacks collect per-rank records with :func:`gather_objects`; which windows each
rank reads is :mod:`lightning_lstm.data.loaders`; running DDP is in ``docs/cluster.md``. Without a distributed process
group every function is a passthrough.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TypeVar

import torch.distributed as dist

T = TypeVar("T")


def is_distributed() -> bool:
    """A process group with more than one process exists (Lightning creates it before ``DataModule.setup``)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def broadcast_from_rank_zero(produce: Callable[[], T], what: str) -> T:
    """``produce()`` on rank zero only, its result sent to every rank; on one process just ``produce()``.

    The result must pickle cheaply and safely (tensors, numbers, strings, lists, dicts: a ``state_dict``). If
    ``produce()`` fails on rank zero, it re-raises there and the other ranks raise a RuntimeError quoting it
    (``"rank 0 could not {what}: ..."``) instead of waiting for an object that never comes.
    """
    if not is_distributed():
        return produce()
    message: list[object] = [None]
    error: Exception | None = None
    if dist.get_rank() == 0:
        try:
            message[0] = ("ok", produce())
        except Exception as err:  # noqa: BLE001 - re-raised below, on every rank
            error, message[0] = err, ("error", f"{type(err).__name__}: {err}")
    dist.broadcast_object_list(message, src=0)
    if error is not None:
        raise error
    status, payload = message[0]
    if status == "error":
        raise RuntimeError(f"rank 0 could not {what}: {payload}")
    return payload


def gather_objects(obj: T) -> list[T]:
    """Every rank's ``obj``, in rank order, on every rank (``all_gather_object``); ``[obj]`` on one process."""
    if not is_distributed():
        return [obj]
    gathered: list[object] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


# Lightning advises ``self.log(name, ..., sync_dist=True)`` once per epoch-level metric logged as a tensor under DDP.
# Here every such value is already the same on all ranks: ``train/loss_epoch`` is summed over ranks before it is
# logged, ``hp_metric`` comes from the synced ``val/loss`` MeanMetric, and the ``test/`` ratios from synced MAEs
# (torchmetrics); ``sync_dist=True`` would average per-rank means wrongly when ranks saw unequal numbers of windows
# (Lightning #21859). Only these names are silenced: a new tensor metric still gets the advice.
SYNC_DIST_ADVICE = (
    r"It is recommended to use `self\.log\('(train/loss_epoch|hp_metric|test/[^']*)', \.\.\., sync_dist=True\)` "
    r"when logging on epoch level in distributed setting"
)


def silence_synced_metric_advice() -> None:
    """Filter Lightning's ``sync_dist=True`` advice for the metrics named in :data:`SYNC_DIST_ADVICE`."""
    warnings.filterwarnings("ignore", message=SYNC_DIST_ADVICE)

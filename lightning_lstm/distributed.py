"""Running on several processes (DDP): which windows each rank reads, and statistics fitted once for all ranks.

Run: ``python -m lightning_lstm fit --config configs/default.yaml --config configs/ddp.yaml`` (one node, all GPUs),
or ``--trainer.accelerator=cpu --trainer.devices=2`` to try it on a laptop (gloo). See ``docs/cluster.md``.

Without a distributed strategy nothing changes: the DataLoader keeps its own sampler, statistics are fitted in place.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sized
from typing import TYPE_CHECKING, Literal

import torch.distributed as dist
from torch.utils.data import DistributedSampler

from lightning_lstm.data.statistics import FittedStatistics

if TYPE_CHECKING:
    import lightning.pytorch as pl


def is_distributed() -> bool:
    """A process group with more than one process exists (Lightning creates it before ``DataModule.setup``)."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def fit_on_rank_zero(fit: Callable[[], FittedStatistics]) -> FittedStatistics:
    """Run ``fit()`` on rank zero only and send its statistics to every rank, so all ranks scale and clip alike.

    If ``fit()`` fails, the other ranks raise too (a RuntimeError quoting it) instead of waiting for statistics.
    """
    if not is_distributed():
        return fit()
    message: list[object] = [None]
    error: Exception | None = None
    if dist.get_rank() == 0:
        try:
            message[0] = fit().state_dict()  # plain tensors and strings
        except Exception as err:  # noqa: BLE001 - re-raised below, on every rank
            error, message[0] = err, f"{type(err).__name__}: {err}"
    dist.broadcast_object_list(message, src=0)
    if error is not None:
        raise error
    if isinstance(message[0], str):
        raise RuntimeError(f"rank 0 could not fit the scaling statistics and clip bounds: {message[0]}")
    return FittedStatistics.from_state_dict(message[0])


class UnrepeatedSampler(DistributedSampler):
    """Rank ``r`` of ``W`` reads windows ``r, r + W, r + 2W, ...`` in order: every window on exactly one rank.

    Ranks then differ by at most one window (and one batch). That is safe for validation, test and predict, whose
    steps run no collective (metrics sync once at epoch end), and never for training (DDP syncs gradients every step).

    Args:
        dataset: the windows.
        num_replicas: number of ranks ``W``.
        rank: this rank.
        pad: with fewer windows than ranks, a rank left without one reads window ``r % N`` so that every rank runs the
            loop; whoever collects the outputs drops the repeat by window id. Off: such a rank reads nothing.
    """

    def __init__(self, dataset: Sized, num_replicas: int, rank: int, pad: bool = False) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        n = len(dataset)
        self.indices = list(range(rank, n, num_replicas)) or ([rank % n] if pad and n else [])
        self.num_samples = len(self.indices)
        self.total_size = n

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return self.num_samples


def window_sampler(
    dataset: Sized,
    trainer: pl.Trainer | None,
    mode: Literal["train", "eval", "predict"],
    shuffle: bool = False,
    drop_last: bool = False,
    split: str = "",
) -> DistributedSampler | None:
    """The sampler that shards ``dataset`` over the DDP ranks; ``None`` without a distributed strategy.

    Under DDP also for a single rank (``devices: 1``): Lightning would otherwise wrap the DataLoader's own sampler.

    ``train``: PyTorch's ``DistributedSampler`` (seeded by ``seed_everything``, reshuffled each epoch): with ``N``
    windows and ``W`` ranks each rank reads ``ceil(N / W)``; the ``W * ceil(N / W) - N`` (< W) missing slots repeat the
    first windows of that epoch's order. ``drop_last``: each rank reads ``floor(N / W)`` and the ``N mod W`` left over
    are skipped that epoch instead (other ones next epoch when shuffling).

    ``eval`` (validation, test): :class:`UnrepeatedSampler`, so the metrics sum every window once, as on one process.
    Lightning's default would pad with repeated windows. ``predict``: the same, padded to one window per rank.
    """
    kwargs = trainer.distributed_sampler_kwargs if trainer is not None else None
    connector = getattr(trainer, "_accelerator_connector", None)
    if not kwargs or not getattr(connector, "use_distributed_sampler", True):
        return None  # no DDP, or the user shards the data (Trainer(use_distributed_sampler=False))
    world, rank = int(kwargs["num_replicas"]), int(kwargs["rank"])
    if mode == "train":
        seed = int(os.getenv("PL_GLOBAL_SEED", "0"))  # what Lightning's own sampler uses: identical on every rank
        return DistributedSampler(
            dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
    if mode == "eval" and len(dataset) < world:
        raise ValueError(
            f"the {split or 'evaluation'} split has {len(dataset)} windows for {world} processes: every process needs "
            f"at least one. Give the split more rows (data.val_fraction / data.test_fraction) or evaluate on fewer "
            f"devices (--trainer.devices=1)."
        )
    return UnrepeatedSampler(dataset, num_replicas=world, rank=rank, pad=mode == "predict")

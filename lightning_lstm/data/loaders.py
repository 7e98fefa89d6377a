"""The DataLoaders: which windows each process reads, in which order, and a training order that resumes mid-epoch.

**One process, training**: Lightning 2.6 restores a plain DataLoader's position nowhere: resumed after ``k`` of an
epoch's ``n`` batches, it trains the *first* ``n - k`` batches of a fresh iterator, with a shuffle from the global RNG
the checkpoint does not hold. It does save and reload the state of a training loader that has ``state_dict`` /
``load_state_dict``: :class:`EpochSampler` shuffles epoch ``e`` with its own generator seeded by ``(seed, e)`` (one
numpy permutation, never a Python list of the epoch) and can start an epoch part-way through;
:class:`ResumableDataLoader` stores the seed, the epoch, the batches the fit loop *finished* (Lightning fetches a
batch ahead) and the global torch RNG state (dropout masks). Not torchdata's ``StatefulDataLoader`` (0.11, tried): the
epoch after a resumed one gets another order than an uninterrupted run's, and it keeps no torch RNG state.

**DDP** (:func:`window_sampler`): training reads this rank's share of the same ``(seed, epoch)`` order
(:class:`EpochDistributedSampler`; Lightning cannot resume it mid-epoch: it warns); validation, test and predict read
every window on exactly one rank (``UnrepeatedDistributedSampler``), so the metrics sum every window once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sized
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler, UnrepeatedDistributedSamplerWrapper
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from lightning_lstm.data.dataset import collate_windows

if TYPE_CHECKING:
    import lightning.pytorch as pl

log = logging.getLogger(__name__)

LoaderMode = Literal["train", "eval", "predict"]
STATE_FORMAT = 1
CHUNK = 4096  # window numbers turned into Python ints at a time


def epoch_order(num_windows: int, shuffle: bool, seed: int, epoch: int) -> np.ndarray:
    """``(num_windows,)`` window numbers of ``epoch``: ``0..n-1``, shuffled by ``default_rng((seed, epoch))``."""
    order = np.arange(num_windows, dtype=np.int32 if num_windows < 2**31 else np.int64)
    if shuffle:
        np.random.default_rng((seed, epoch)).shuffle(order)
    return order


class EpochSampler(Sampler[int]):
    """Window numbers ``0..n-1``; with ``shuffle`` in the order ``np.random.default_rng((seed, epoch))`` gives.

    Seeded by both numbers, not ``seed + epoch``: with a sum, seed ``s`` at epoch ``e`` would repeat seed ``s + 1``'s
    order at epoch ``e - 1``, so runs with consecutive seeds would share their batch orders.

    Lightning calls :meth:`set_epoch` before each epoch; a pass that runs to the end moves on to the next epoch by
    itself, so a hand-written loop over the DataLoader reshuffles every pass too.

    Args:
        num_windows: windows in the dataset.
        shuffle: shuffle (else the natural order).
        seed: base seed of the shuffles.
        epoch: the epoch whose order the next pass yields.
    """

    def __init__(self, num_windows: int, shuffle: bool, seed: int, epoch: int = 0) -> None:
        self.num_windows, self.shuffle, self.seed, self.epoch = num_windows, shuffle, seed, epoch
        self.start = 0  # windows of this epoch already trained on (from a checkpoint): the next pass skips them

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.start = epoch, 0

    def order(self, epoch: int) -> np.ndarray:
        """``(num_windows,)`` window numbers of ``epoch``."""
        return epoch_order(self.num_windows, self.shuffle, self.seed, epoch)

    def __iter__(self) -> Iterator[int]:
        order = self.order(self.epoch)
        for begin in range(self.start, self.num_windows, CHUNK):
            yield from order[begin : begin + CHUNK].tolist()
        self.epoch, self.start = self.epoch + 1, 0

    def __len__(self) -> int:
        return self.num_windows  # the whole epoch, also when resuming: Lightning counts the finished batches itself


class EpochDistributedSampler(DistributedSampler):
    """PyTorch's ``DistributedSampler`` with the epoch order of :class:`EpochSampler`: seeded by ``(seed, epoch)``.

    PyTorch's seeds epoch ``e`` with ``seed + e``, so seed ``s`` at epoch ``e`` would repeat seed ``s + 1``'s order at
    epoch ``e - 1`` on every rank. The sharding is PyTorch's: the padded (or, with ``drop_last``, truncated) order is
    dealt out ``rank, rank + W, ...``; Lightning calls ``set_epoch`` before each epoch.
    """

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)  # type: ignore[arg-type]
        order = epoch_order(n, self.shuffle, self.seed, self.epoch)
        if self.drop_last:
            order = order[: self.total_size]
        else:  # the first windows of the order fill the last slots (np.resize repeats the order as often as needed)
            order = np.resize(order, self.total_size)
        return iter(order[self.rank : self.total_size : self.num_replicas].tolist())


class ResumableDataLoader(DataLoader):
    """A DataLoader over an :class:`EpochSampler` whose position and RNG state travel in Lightning checkpoints.

    Args:
        *args: as for :class:`~torch.utils.data.DataLoader`, with an :class:`EpochSampler` as ``sampler`` (with any
            other, e.g. Lightning's for ``overfit_batches``, the state is empty).
        position: ``(epoch, finished batches in it)`` of the running fit, ``(next epoch, 0)`` once an epoch's
            batches are all done; read when a checkpoint is written.
        **kwargs: as for :class:`~torch.utils.data.DataLoader`.
    """

    def __init__(self, *args: Any, position: Callable[[], tuple[int, int]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.position = position

    def state_dict(self) -> dict[str, Any]:
        sampler = self.sampler
        if not isinstance(sampler, EpochSampler):  # Lightning swapped it (e.g. overfit_batches): nothing to resume
            return {}
        epoch, batches = self.position()
        state = {
            "format": STATE_FORMAT,
            "seed": sampler.seed,
            "shuffle": sampler.shuffle,
            "num_windows": sampler.num_windows,
            "batch_size": self.batch_size,
            "epoch": epoch,
            "batches_done": batches,
            "torch_rng": torch.get_rng_state(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        sampler = self.sampler
        if not state or not isinstance(sampler, EpochSampler):
            return
        if state.get("format") != STATE_FORMAT:
            log.warning(
                "unknown train-loader state (format %r): the epoch restarts at its first batch", state.get("format")
            )
            return
        sampler.seed = int(state["seed"])
        sampler.set_epoch(int(state["epoch"]))
        sampler.start = 0
        here = (sampler.num_windows, self.batch_size, sampler.shuffle)
        there = (state["num_windows"], state["batch_size"], state["shuffle"])
        if here == there:
            sampler.start = int(state["batches_done"]) * int(state["batch_size"])
        elif state["batches_done"]:
            log.warning(
                "the checkpoint was written %d batches into epoch %d with (windows, batch size, shuffle) = %s; this "
                "run has %s: the epoch restarts at its first batch",
                state["batches_done"],
                state["epoch"],
                there,
                here,
            )
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])


def fit_position(trainer: pl.Trainer | None, sampler: EpochSampler) -> tuple[int, int]:
    """``(epoch, finished batches in it)`` of ``trainer``'s fit; ``(next epoch, 0)`` once its batches are all done."""
    if trainer is None:
        return sampler.epoch, 0
    loop = trainer.fit_loop
    epoch = max(loop.epoch_progress.current.started - 1, 0)  # the epoch running, or the one just finished
    done = loop.epoch_loop.batch_progress.current.processed
    if done >= trainer.num_training_batches:
        return epoch + 1, 0
    return epoch, done


def resumable_train_loader(
    dataset: Dataset, trainer: pl.Trainer | None, shuffle: bool, **loader_options: Any
) -> ResumableDataLoader:
    """The training DataLoader of one process, seeded by ``seed_everything`` (``PL_GLOBAL_SEED``) or torch's seed."""
    seed = int(os.environ.get("PL_GLOBAL_SEED", torch.initial_seed())) % 2**32
    epoch = trainer.current_epoch if trainer is not None else 0
    sampler = EpochSampler(len(dataset), shuffle, seed, epoch)
    generator = torch.Generator().manual_seed(seed)  # worker seeds, drawn without touching the global RNG
    return ResumableDataLoader(
        dataset,
        sampler=sampler,
        generator=generator,
        position=lambda: fit_position(trainer, sampler),
        **loader_options,
    )


def uses_distributed_sampler(trainer: pl.Trainer) -> bool:
    """``Trainer(use_distributed_sampler=...)``: off when the user shards the data themselves."""
    # Lightning 2.6 keeps this flag only on the private accelerator connector; no public Trainer property exposes it.
    return bool(getattr(getattr(trainer, "_accelerator_connector", None), "use_distributed_sampler", True))


def window_sampler(
    dataset: Sized,
    trainer: pl.Trainer | None,
    mode: LoaderMode,
    shuffle: bool = False,
    drop_last: bool = False,
    split: str = "",
) -> DistributedSampler | None:
    """The sampler that shards ``dataset`` over the DDP ranks; ``None`` without a distributed strategy.

    Under DDP also for a single rank (``devices: 1``): Lightning would otherwise wrap the DataLoader's own sampler.

    ``train``: :class:`EpochDistributedSampler` (seeded by ``seed_everything``, reshuffled each epoch): with ``N``
    windows and ``W`` ranks each rank reads ``ceil(N / W)``; the ``W * ceil(N / W) - N`` (< W) missing slots repeat the
    first windows of that epoch's order. ``drop_last``: each rank reads ``floor(N / W)`` and the ``N mod W`` left over
    are skipped that epoch instead (other ones next epoch when shuffling). Ours, not the one Lightning injects:
    Lightning 2.6 always shuffles a training loader it wraps (even with ``data.shuffle: false``), without ``drop_last``.

    ``eval`` (validation, test): Lightning's ``UnrepeatedDistributedSampler``: rank ``r`` reads windows
    ``r, r + W, ...``, every window on exactly one rank (Lightning's default for these would pad with repeats).
    ``predict``: the same; with fewer windows than ranks a rank left without one reads window ``r % N`` (Lightning's
    sampler refuses an empty rank) so that every rank runs the loop, and the writer drops the repeat by window id.
    """
    kwargs = trainer.distributed_sampler_kwargs if trainer is not None else None
    if not kwargs or not uses_distributed_sampler(trainer):
        return None  # no DDP, or the user shards the data (Trainer(use_distributed_sampler=False))
    world, rank = int(kwargs["num_replicas"]), int(kwargs["rank"])
    if mode == "train":
        seed = int(os.getenv("PL_GLOBAL_SEED", "0"))  # what Lightning's own sampler uses: identical on every rank
        return EpochDistributedSampler(
            dataset, num_replicas=world, rank=rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
    n = len(dataset)
    if mode == "eval" and n < world:
        raise ValueError(
            f"the {split or 'evaluation'} split has {n} windows for {world} processes: every process needs "
            f"at least one. Give the split more rows (data.val_fraction / data.test_fraction) or evaluate on fewer "
            f"devices (--trainer.devices=1)."
        )
    if 0 < n < world:  # predict: window numbers padded to one per rank
        return UnrepeatedDistributedSamplerWrapper([r % n for r in range(world)], num_replicas=world, rank=rank)
    return UnrepeatedDistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=False)


def window_loader(
    dataset: Dataset,
    trainer: pl.Trainer | None,
    mode: LoaderMode,
    *,
    split: str,
    batch_size: int,
    num_workers: int,
    shuffle: bool,
    drop_last: bool,
    pin_memory: bool | None,
) -> DataLoader:
    """The DataLoader of one split: this rank's share under DDP, else on one process a resumable training order."""
    options = dict(
        batch_size=batch_size,
        drop_last=mode == "train" and drop_last,
        num_workers=num_workers,
        collate_fn=collate_windows,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        persistent_workers=num_workers > 0,
    )
    sampler = window_sampler(dataset, trainer, mode, shuffle, drop_last, split)
    if sampler is None and mode == "train":
        return resumable_train_loader(dataset, trainer, shuffle, **options)
    return DataLoader(dataset, sampler=sampler, **options)

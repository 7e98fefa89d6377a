"""Which windows each process reads, in which order: the resumable epoch order and the DDP shards, without processes."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

from lightning_lstm.data.loaders import EpochSampler, window_sampler


def test_epoch_sampler_orders_each_epoch_from_its_seed_and_resumes_mid_epoch() -> None:
    sampler = EpochSampler(1000, shuffle=True, seed=7)
    first, second = list(sampler), list(sampler)  # a pass that ends moves on to the next epoch by itself
    assert sorted(first) == list(range(1000)) and first != second
    again = EpochSampler(1000, shuffle=True, seed=7, epoch=1)
    again.start = 300  # as a checkpoint 300 windows into epoch 1 sets it
    assert list(again) == second[300:]
    assert list(again) == list(EpochSampler(1000, shuffle=True, seed=7, epoch=2))  # then epoch 2 in full
    assert list(EpochSampler(5, shuffle=False, seed=7)) == [0, 1, 2, 3, 4]


def test_consecutive_seeds_share_no_epoch_order() -> None:
    # Seeded by seed + epoch, seed s at epoch e would repeat seed s + 1 at epoch e - 1: "3 seeds" would share batches.
    for seed in (0, 7, 41):
        orders = {
            s: [EpochSampler(200, shuffle=True, seed=s).order(e).tolist() for e in range(4)] for s in (seed, seed + 1)
        }
        assert not [o for o in orders[seed] if o in orders[seed + 1]], seed
        assert len({tuple(o) for o in orders[seed]}) == 4  # and no two epochs of one seed repeat each other


def fake_trainer(world: int, rank: int) -> SimpleNamespace:
    return SimpleNamespace(
        distributed_sampler_kwargs={"num_replicas": world, "rank": rank},
        _accelerator_connector=SimpleNamespace(use_distributed_sampler=True),
    )


def shards(n: int, world: int, mode: str, **kwargs) -> list[list[int]]:
    return [list(window_sampler(range(n), fake_trainer(world, r), mode, **kwargs)) for r in range(world)]


def test_training_shards_cover_every_window_and_pad_or_drop_the_remainder():
    parts = shards(11, 4, "train", shuffle=True)
    seen = np.concatenate(parts)
    assert [len(p) for p in parts] == [3, 3, 3, 3]  # ceil(11 / 4) each
    assert set(seen) == set(range(11)) and len(seen) - 11 == 1  # all 11, one repeated to fill the 12th slot
    parts = shards(11, 4, "train", shuffle=True, drop_last=True)
    seen = np.concatenate(parts)
    assert [len(p) for p in parts] == [2, 2, 2, 2] and len(set(seen)) == 8  # no repeat; 3 skipped this epoch
    assert window_sampler(range(11), None, "train") is None  # no DDP: the DataLoader's own
    assert len(window_sampler(range(11), fake_trainer(1, 0), "train", drop_last=True)) == 11  # DDP on one device


def test_training_shards_deal_out_the_one_process_epoch_order_and_consecutive_seeds_share_none():
    # PyTorch's DistributedSampler seeds epoch e with seed + e; ours deals out EpochSampler's (seed, epoch) order.
    def epoch_shards(seed: int, epoch: int) -> list[list[int]]:
        samplers = [window_sampler(range(11), fake_trainer(2, r), "train", shuffle=True) for r in range(2)]
        for sampler in samplers:
            sampler.seed = seed  # what PL_GLOBAL_SEED sets
            sampler.set_epoch(epoch)
        return [list(s) for s in samplers]

    for epoch in range(3):
        order = EpochSampler(11, shuffle=True, seed=5).order(epoch).tolist()
        assert epoch_shards(5, epoch) == [order[0::2], order[1::2] + order[:1]]  # padded with the order's first
    assert not [e for e in range(1, 4) if epoch_shards(5, e) == epoch_shards(6, e - 1)]


def test_unshuffled_training_shards_keep_the_time_order():
    # The reason the training sampler is ours: Lightning 2.6 wraps a training loader in a shuffling DistributedSampler
    # whatever data.shuffle says.
    assert shards(11, 2, "train", shuffle=False) == [[0, 2, 4, 6, 8, 10], [1, 3, 5, 7, 9, 0]]


def test_evaluation_shards_hold_every_window_exactly_once_and_predict_pads_to_one_per_rank():
    parts = shards(59, 2, "eval")
    assert [len(p) for p in parts] == [30, 29]
    assert sorted(np.concatenate(parts)) == list(range(59))
    assert all(
        isinstance(window_sampler(range(59), fake_trainer(2, r), "eval"), UnrepeatedDistributedSampler) for r in (0, 1)
    )
    assert shards(1, 2, "predict") == [[0], [0]]  # one forecast window, two ranks: both run, the writer keeps one
    assert shards(3, 2, "predict") == [[0, 2], [1]]  # enough windows: each once, as for evaluation
    with pytest.raises(ValueError, match="the test split has 1 windows for 2 processes"):
        window_sampler(range(1), fake_trainer(2, 1), "eval", split="test")


def test_a_trainer_that_does_not_shard_gets_no_sampler():
    trainer = fake_trainer(2, 0)
    trainer._accelerator_connector.use_distributed_sampler = False  # Trainer(use_distributed_sampler=False)
    assert window_sampler(range(11), trainer, "eval") is None

"""``data.device_resident``: the same training batches, in the same order, as the DataLoader path (on the CPU).

Bit-identical ``x``, ``y``, ids and scales over two shuffled epochs, with clipping and ``window_norm: last``; a DDP
rank's ``DistributedSampler`` shard gathered alike; and a short fit that trains on them. A few seconds.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.data.dataset import collate_windows
from lightning_lstm.data.device_windows import DeviceWindows
from lightning_lstm.model.module import LSTMForecaster

KEYS = ("x", "y", "window_id", "series", "target_center", "target_scale")


def datamodule(csv: Path, **options) -> TimeSeriesDataModule:
    options = {"lookback": 8, "horizon": 2, "batch_size": 16, "shuffle": True, "window_norm": "none", **options}
    data = TimeSeriesDataModule(path=str(csv), target_columns=["value"], **options)
    data.setup("fit")
    return data


def assert_same_batches(loader_batches, device_batches) -> None:
    assert len(loader_batches) == len(device_batches) > 0
    for expected, got in zip(loader_batches, device_batches, strict=True):
        for key in KEYS:
            assert torch.equal(expected[key], got[key]), key


@pytest.mark.parametrize(
    "options",
    [{}, {"window_norm": "last", "outliers": "iqr", "drop_last": True}, {"shuffle": False, "batch_size": 7}],
    ids=["plain", "last-clipped-drop_last", "unshuffled"],
)
def test_device_batches_equal_the_loader_batches_over_two_epochs(sine_csv: Path, options: dict):
    loader_path, device_path = datamodule(sine_csv, **options), datamodule(sine_csv, **options)
    loader = loader_path.train_dataloader()
    windows = DeviceWindows(device_path.train_dataloader(), "cpu")
    assert len(windows) == len(loader)
    for epoch in range(2):  # Lightning sets the epoch; EpochSampler reshuffles per epoch
        loader.sampler.set_epoch(epoch), windows.sampler.set_epoch(epoch)
        assert_same_batches(list(loader), list(windows))


def test_window_norm_standard_gives_the_loader_batches_on_the_device(sine_csv: Path):
    loader_path, device_path = (
        datamodule(sine_csv, window_norm="standard"),
        datamodule(sine_csv, window_norm="standard"),
    )
    expected, got = list(loader_path.train_dataloader()), list(DeviceWindows(device_path.train_dataloader(), "cpu"))
    assert len(expected) == len(got) > 0
    for one, other in zip(expected, got, strict=True):
        for key in KEYS:  # torch's and numpy's float32 std may differ in the last bits
            torch.testing.assert_close(one[key], other[key], rtol=1e-5, atol=1e-5, msg=key)


def test_a_ranks_shard_is_gathered_in_its_sampler_order(sine_csv: Path):
    data = datamodule(sine_csv)
    dataset = data.dataset("train")
    for rank in range(2):
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=3)
        loader = DataLoader(dataset, batch_size=16, sampler=sampler, collate_fn=collate_windows)
        shard = list(DeviceWindows(loader, "cpu"))
        assert_same_batches(list(loader), shard)
        assert sum(len(b["window_id"]) for b in shard) == len(sampler)


def test_known_future_inputs_are_refused(sine_csv: Path):
    data = datamodule(sine_csv, calendar=["day_of_week"])
    with pytest.raises(ValueError, match="data.device_resident"):
        DeviceWindows(data.train_dataloader(), "cpu")


def test_a_fit_on_device_resident_windows_matches_the_loader_fit(tmp_path: Path, sine_csv: Path, one_thread):
    def fit(device_resident: bool) -> dict[str, torch.Tensor]:
        pl.seed_everything(0)
        data = TimeSeriesDataModule(path=str(sine_csv), target_columns=["value"], lookback=8, horizon=2, batch_size=16,
                                    window_norm="none", device_resident=device_resident)  # fmt: skip
        model = LSTMForecaster(horizon=2, hidden_size=4, num_layers=1, scheduler=None)
        trainer = pl.Trainer(default_root_dir=tmp_path, max_epochs=2, limit_val_batches=0, num_sanity_val_steps=0,
                             logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, accelerator="cpu", devices=1, deterministic=True)  # fmt: skip
        trainer.fit(model, data)
        assert isinstance(trainer.train_dataloader, DeviceWindows) == device_resident
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    loader_weights, device_weights = fit(False), fit(True)
    assert all(torch.equal(loader_weights[k], device_weights[k]) for k in loader_weights)

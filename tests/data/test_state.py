"""Fitted statistics travel in the checkpoint: plain tensors and strings, identical batches after a restore."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.data.statistics import FittedStatistics

OPTIONS = {
    "time_column": "date",
    "target_columns": ["value"],
    "feature_columns": ["value", "other"],
    "lookback": 14,
    "horizon": 3,
    "scaler": "robust",
    "outliers": "iqr",
    "missing": "drop",
    "window_norm": "last",
    "shuffle": False,
}


def write_series(path: Path, level: float = 10.0) -> Path:
    rng = np.random.default_rng(4)
    t = np.arange(200)
    table = pd.DataFrame(
        {
            "date": pd.date_range("2023-01-01", periods=len(t), freq="h"),
            "value": level + 3 * np.sin(2 * np.pi * t / 24) + 0.2 * rng.standard_normal(len(t)),
            "other": rng.standard_normal(len(t)),
        }
    )
    table.loc[[17, 120], "value"] = np.nan
    table.loc[50, "value"] = 500.0  # clipped by the iqr bounds in training
    table.to_csv(path, index=False)
    return path


def batches(dm: TimeSeriesDataModule, split: str) -> dict[str, torch.Tensor]:
    dataset = dm.dataset(split)
    return dataset.__getitems__(list(range(len(dataset))))


def assert_plain(value: object) -> None:
    """Only what ``torch.load(weights_only=True)`` accepts without running code."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str)
            assert_plain(item)
    elif isinstance(value, list):
        for item in value:
            assert_plain(item)
    else:
        assert isinstance(value, (str, int, float, bool, torch.Tensor)), type(value)


@pytest.fixture
def trained(tmp_path: Path) -> TimeSeriesDataModule:
    dm = TimeSeriesDataModule(path=str(write_series(tmp_path / "series.csv")), **OPTIONS)
    dm.setup("fit")
    return dm


def test_restored_module_serves_identical_batches(
    trained: TimeSeriesDataModule, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = trained.state_dict()
    assert_plain(state)
    torch.save(state, tmp_path / "state.pt")
    loaded = torch.load(tmp_path / "state.pt", weights_only=True)
    fresh = TimeSeriesDataModule(path=trained.path, **OPTIONS)
    fresh.load_state_dict(loaded)
    monkeypatch.setattr(FittedStatistics, "fit", lambda *a, **k: pytest.fail("restored statistics were refitted"))
    fresh.setup("fit")
    for split in ("train", "val", "test"):
        expected, got = batches(trained, split), batches(fresh, split)
        assert expected.keys() == got.keys()
        for key in expected:
            assert torch.equal(torch.nan_to_num(expected[key]), torch.nan_to_num(got[key])), (split, key)
    first = next(iter(trained.train_dataloader()))
    again = next(iter(fresh.train_dataloader()))
    assert torch.equal(first["x"], again["x"]) and torch.equal(first["window_id"], again["window_id"])


def test_predict_on_another_file_uses_the_checkpoint_statistics(trained: TimeSeriesDataModule, tmp_path: Path) -> None:
    state = trained.state_dict()
    other = write_series(tmp_path / "shifted.csv", level=1000.0)  # refitting would give very different statistics
    for mode in ("forecast", "backtest"):
        dm = TimeSeriesDataModule(path=str(other), predict_mode=mode, **OPTIONS)
        dm.setup("predict")
        dm.load_state_dict(state)  # Lightning restores the checkpoint after setup
        for key in ("center", "scale", "clip_low", "clip_high"):
            np.testing.assert_array_equal(getattr(dm.stats, key), getattr(trained.stats, key))
        batch = next(iter(dm.predict_dataloader()))
        assert torch.isfinite(batch["x"]).all()
        # The checkpoint's clip bounds apply (clip_eval_inputs): a level of 1000 is clipped to the training range.
        assert (batch["target_center"] <= trained.stats.clip_high[0, 0] + 1e-3).all()


def test_checkpoint_of_another_feature_set_is_a_clear_error(trained: TimeSeriesDataModule) -> None:
    other = TimeSeriesDataModule(path=trained.path, **{**OPTIONS, "feature_columns": ["value"]})
    expected = r"data.feature_columns = \['value', 'other'\], but the config gives \['value'\]"
    with pytest.raises(ValueError, match=expected):
        other.load_state_dict(trained.state_dict())
    norm = TimeSeriesDataModule(path=trained.path, **{**OPTIONS, "window_norm": "none"})
    with pytest.raises(ValueError, match="data.window_norm = last, but the config gives none"):
        norm.load_state_dict(trained.state_dict())
    with pytest.raises(ValueError, match="format"):
        other.load_state_dict({**trained.state_dict(), "format": 99})


def test_state_holds_every_fitted_number(trained: TimeSeriesDataModule) -> None:
    state = trained.state_dict()
    assert state["time_step"] == 3600 * 10**9 and state["is_datetime"] is True
    restored = FittedStatistics.from_state_dict(state["statistics"])
    assert restored.columns == ["value", "other"] and restored.series_names == ["series"]
    assert restored.clipped == trained.stats.clipped and restored.clipped["value"] >= 1
    np.testing.assert_array_equal(restored.center, trained.stats.center)
    assert TimeSeriesDataModule(**OPTIONS).state_dict() == {}  # nothing fitted yet


def test_sizes_the_model_needs_are_known_before_setup() -> None:
    dm = TimeSeriesDataModule(path="not/read/yet.csv", target_columns=["a"], feature_columns=["a", "b", "c"])
    assert (dm.num_features, dm.num_targets, dm.hparams.lookback, dm.hparams.horizon) == (3, 1, 52, 4)
    assert dm.frame is None  # nothing was read

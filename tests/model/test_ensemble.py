"""Averaging checkpoints at predict: members load as their own networks, the mean is exact, misfits are errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lightning_lstm.model.ensemble import ensemble_mean, load_member
from lightning_lstm.model.module import LSTMForecaster

LOOKBACK, HORIZON = 6, 3
STATISTICS = {
    "series_names": ["series"],
    "columns": ["y"],
    "clip_low": torch.full((1, 1), -torch.inf, dtype=torch.float64),
    "clip_high": torch.full((1, 1), torch.inf, dtype=torch.float64),
    "center": torch.zeros(1, 1, dtype=torch.float64),
    "scale": torch.ones(1, 1, dtype=torch.float64),
}


def save(path: Path, model: LSTMForecaster, center: float = 0.0) -> Path:
    """A checkpoint as Lightning writes one: hyperparameters, weights, and the data module's entry."""
    statistics = {**STATISTICS, "center": torch.full((1, 1), center, dtype=torch.float64)}
    checkpoint = {
        "hyper_parameters": dict(model.hparams),
        "state_dict": model.state_dict(),
        "TimeSeriesDataModule": {"format": 1, "statistics": statistics},
    }
    torch.save(checkpoint, path)
    return path


def model(seed: int, **options: object) -> LSTMForecaster:
    torch.manual_seed(seed)
    options = {"hidden_size": 4, "num_layers": 1, **options}
    return LSTMForecaster(input_size=1, horizon=HORIZON, future_size=2, **options).eval()


def test_members_average_with_the_predicting_model(tmp_path: Path) -> None:
    first, second, third = model(0), model(1), model(2, hidden_size=6, head="mlp")  # members may differ in width
    paths = [save(tmp_path / "b.ckpt", second), save(tmp_path / "c.ckpt", third)]
    first.add_ensemble_members([str(p) for p in paths], {"statistics": STATISTICS})
    x, known = torch.randn(5, LOOKBACK, 1), torch.randn(5, LOOKBACK + HORIZON, 2)
    batch = {"x": x, "known": known, "window_id": torch.arange(5)}
    batch.update(target_center=torch.full((5, 1), 10.0), target_scale=torch.full((5, 1), 2.0))
    with torch.no_grad():
        mean = (first(x, known) + second(x, known) + third(x, known)) / 3  # (B, H, T), scaled units
        forecast = first.predict_step(batch, 0)["forecast"]
    torch.testing.assert_close(forecast, mean * 2.0 + 10.0)
    assert not torch.allclose(forecast, first(x, known).detach() * 2.0 + 10.0)  # the members changed the forecast
    assert ensemble_mean(mean, [], x, known) is mean


def test_members_must_read_the_same_inputs_and_steps(tmp_path: Path) -> None:
    path = save(tmp_path / "b.ckpt", model(1))
    hparams = dict(model(0).hparams)
    with pytest.raises(ValueError, match="model.horizon = 3, the predicting model 5"):
        load_member(str(path), {**hparams, "horizon": 5})
    with pytest.raises(ValueError, match="model.future_size = 2, the predicting model 0"):
        load_member(str(path), {**hparams, "future_size": 0})


def test_members_must_share_the_data_statistics(tmp_path: Path) -> None:
    path = save(tmp_path / "b.ckpt", model(1), center=3.0)
    with pytest.raises(ValueError, match="other data statistics"):
        load_member(str(path), dict(model(0).hparams), {"statistics": STATISTICS})


def test_unreadable_members_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    hparams = dict(model(0).hparams)
    with pytest.raises(ValueError, match="bad.ckpt' is not a readable checkpoint"):
        load_member(str(tmp_path / "bad.ckpt"), hparams)
    with pytest.raises(ValueError, match="does not exist"):
        load_member(str(tmp_path / "missing.ckpt"), hparams)

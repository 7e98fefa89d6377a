"""The network's series embedding: where it is read, its checks, and a checkpoint's rows restored."""

from __future__ import annotations

import pytest
import torch

from lightning_lstm.model.regressor import LSTMRegressor
from lightning_lstm.model.series_embedding import SERIES_KEY, WEIGHT_KEY, restore_series


def net(**options) -> LSTMRegressor:
    torch.manual_seed(0)
    return LSTMRegressor(input_size=2, num_targets=1, horizon=3, hidden_size=4, num_layers=1, **options)


def test_the_lstm_and_the_head_read_the_vector() -> None:
    model = net(series_embedding=5, num_series=4)
    assert model.lstm.input_size == 2 + 5
    assert model.head.in_features == 4 + 5
    x = torch.randn(6, 8, 2)  # (B, L, F)
    out = model(x, None, torch.tensor([0, 1, 2, 3, 0, 1]))
    assert out.shape == (6, 3, 1)
    same = model(x[:1].expand(2, -1, -1), None, torch.tensor([0, 3]))  # one window, two series: two forecasts
    assert not torch.allclose(same[0], same[1])


def test_the_table_is_built_later_and_the_series_index_is_required() -> None:
    model = net(series_embedding=2)
    with pytest.raises(ValueError, match="model.series_embedding = 2, but the embedding has no table yet"):
        model(torch.randn(1, 8, 2), None, torch.tensor([0]))
    model.set_num_series(3)
    assert model.num_series == 3
    with pytest.raises(ValueError, match=r"pass series of shape \(1,\), got None"):
        model(torch.randn(1, 8, 2))
    with pytest.raises(ValueError, match="model.series_embedding must be >= 0"):
        net(series_embedding=-1)
    assert net().num_series == 0 and net()(torch.randn(2, 8, 2), None, torch.tensor([5, 9])).shape == (2, 3, 1)


def test_restore_series_rebuilds_the_checkpoint_rows() -> None:
    model = net(series_embedding=2, num_series=7)
    checkpoint = {
        "hyper_parameters": {"series_embedding": 2},
        "state_dict": {WEIGHT_KEY: torch.zeros(3, 2)},
        SERIES_KEY: ["a", "b", "c"],
    }
    assert restore_series(model, checkpoint, 2) == ["a", "b", "c"]
    assert model.num_series == 3
    assert restore_series(net(), {"hyper_parameters": {}}, 0) == []  # a checkpoint written before the option
    broken = {**checkpoint, SERIES_KEY: ["a", "b"]}
    with pytest.raises(ValueError, match="2 series names .* table of 3 rows"):
        restore_series(model, broken, 2)

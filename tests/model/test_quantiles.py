"""Quantile forecasts and the residual over the seasonal naive: levels checked by name, quantiles that never cross,
the pinball loss and the coverage scores by hand, and the default model exactly as before these options."""

from __future__ import annotations

import pytest
import torch

from lightning_lstm.model.module import LSTMForecaster
from lightning_lstm.model.quantiles import (
    QuantileScores,
    central_intervals,
    non_crossing,
    pinball_loss,
    quantile_label,
)
from lightning_lstm.model.regressor import LSTMRegressor

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py

# LSTMForecaster(input_size=2, horizon=3, future_size=2, hidden_size=4, num_layers=2) after torch.manual_seed(0), on
# the inputs of inputs(): its state dict and outputs, taken from commit dd663a9 (before quantiles and the residual).
BEFORE_SHAPES = {
    "net.head.bias": (3,), "net.head.weight": (3, 10),
    "net.lstm.bias_hh_l0": (16,), "net.lstm.bias_hh_l1": (16,), "net.lstm.bias_ih_l0": (16,),
    "net.lstm.bias_ih_l1": (16,), "net.lstm.weight_hh_l0": (16, 4), "net.lstm.weight_hh_l1": (16, 4),
    "net.lstm.weight_ih_l0": (16, 4), "net.lstm.weight_ih_l1": (16, 4),
}  # fmt: skip
BEFORE_OUTPUT = [0.09610409, 0.31169969, 0.24957055, -0.73740828, -0.04564810, -0.12994042]


def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(2, 6, 2, generator=generator), torch.randn(2, 9, 2, generator=generator)  # (B, L, F), known


def forecaster(**kwargs) -> LSTMForecaster:
    torch.manual_seed(0)
    return LSTMForecaster(input_size=2, horizon=3, future_size=2, hidden_size=4, num_layers=2, **kwargs)


def test_the_default_model_is_the_model_of_before() -> None:
    model = forecaster()
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == BEFORE_SHAPES
    torch.testing.assert_close(model(*inputs()).flatten(), torch.tensor(BEFORE_OUTPUT), atol=1e-6, rtol=0)
    assert model.hparams.quantiles is None and model.hparams.residual == "none"


@pytest.mark.parametrize(
    ("quantiles", "message"),
    [
        ([0.1, 0.9], "must include 0.5"),
        ([0.5, 0.1, 0.9], "increasing"),
        ([0.0, 0.5], r"levels in \(0, 1\)"),
        ([], r"levels in \(0, 1\)"),
    ],
)
def test_bad_levels_are_refused_naming_model_quantiles(quantiles: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=rf"model\.quantiles .*{message}"):
        forecaster(quantiles=quantiles)


def test_residual_options_are_checked_by_name() -> None:
    with pytest.raises(ValueError, match=r"model\.residual must be one of \['none', 'seasonal_naive'\]"):
        forecaster(residual="seasonal")


def test_labels_and_central_intervals() -> None:
    assert [quantile_label(q) for q in (0.05, 0.1, 0.5, 0.9, 0.975)] == ["q05", "q10", "q50", "q90", "q97.5"]
    assert central_intervals([0.05, 0.1, 0.5, 0.9, 0.95]) == [(90, 0, 4), (80, 1, 3)]
    assert central_intervals([0.1, 0.5, 0.8]) == []  # 0.1 has no 0.9


def test_quantiles_never_cross_and_the_median_is_the_raw_median() -> None:
    raw = 5 * torch.randn(64, 3, 2, 5, generator=torch.Generator().manual_seed(0))  # (B, H, T, Q)
    quantiles = non_crossing(raw, median_index=2)
    assert (quantiles.diff(dim=-1) >= 0).all()  # never crossing (a step below float precision may tie)
    torch.testing.assert_close(quantiles[..., 2], raw[..., 2])


def test_the_quantile_head_emits_one_output_per_level_and_keeps_the_point_shapes() -> None:
    net = LSTMRegressor(2, 2, 3, hidden_size=4, future_size=1, quantiles=[0.1, 0.5, 0.9])
    assert net.head.out_features == 3 * 2 * 3  # H * T * Q
    out = net(torch.randn(5, 6, 2), torch.randn(5, 9, 1))
    assert out.shape == (5, 3, 2, 3) and (out.diff(dim=-1) >= 0).all()
    assert {k: v.shape for k, v in net.lstm.state_dict().items()} == {
        k: v.shape for k, v in LSTMRegressor(2, 2, 3, hidden_size=4, future_size=1).lstm.state_dict().items()
    }


def test_pinball_loss_by_hand() -> None:
    # target 1; forecasts 0, 1, 3 at 0.1, 0.5, 0.9: errors 1, 0, -2 -> 0.1 * 1, 0, 0.1 * 2 -> mean 0.1
    loss = pinball_loss(torch.tensor([[[[0.0, 1.0, 3.0]]]]), torch.tensor([[[1.0]]]), torch.tensor([0.1, 0.5, 0.9]))
    torch.testing.assert_close(loss, torch.tensor([[[0.1]]]))


def test_quantile_scores_by_hand_leave_filled_values_out() -> None:
    scores = QuantileScores([0.1, 0.5, 0.9])
    quantiles = torch.tensor([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0], [0.0, 1.0, 2.0], [0.0, 1.0, 2.0]]).view(1, 4, 1, 3)
    truth = torch.tensor([1.0, 3.0, -1.0, 100.0]).view(1, 4, 1)
    observed = torch.tensor([True, True, True, False]).view(1, 4, 1)  # the 100 was filled: not scored
    scores.update(quantiles, truth, observed)
    result = scores.compute()
    assert result.keys() == {"pinball", "coverage_80"}
    torch.testing.assert_close(result["coverage_80"], torch.tensor(1 / 3))
    # truth 1: 0.1 + 0 + 0.1; truth 3: 0.3 + 1.0 + 0.9; truth -1: 0.9 + 1.0 + 0.3 -> each / 3, mean over 3 values
    torch.testing.assert_close(result["pinball"], torch.tensor((0.2 + 2.2 + 2.2) / 9))


def test_residual_adds_the_seasonal_base_to_points_and_quantiles() -> None:
    x, known = inputs()
    base = torch.randn(2, 3, 1)
    point = forecaster(residual="seasonal_naive")
    torch.testing.assert_close(point(x, known, base), point.net(x, known) + base)
    quantile = forecaster(residual="seasonal_naive", quantiles=[0.1, 0.5, 0.9])
    torch.testing.assert_close(quantile(x, known, base), quantile.net(x, known) + base[..., None])
    assert quantile.point(quantile(x, known, base)).shape == (2, 3, 1)
    with pytest.raises(ValueError, match=r"model\.residual: seasonal_naive needs each batch's seasonal_base"):
        point(x, known)

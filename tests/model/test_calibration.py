"""Split-conformal calibration of quantile intervals: the scores, the finite-sample quantile and the widening by hand,
quantiles that never cross after it, coverage restored on fresh draws, and the module's buffer and option."""

from __future__ import annotations

import pytest
import torch

from lightning_lstm.model.calibration import (
    ConformalCalibration,
    conformal_quantile,
    conformity_scores,
    fewest_scores,
    widen,
)
from lightning_lstm.model.module import LSTMForecaster
from lightning_lstm.model.quantiles import central_intervals

LEVELS = [0.1, 0.5, 0.9]
INTERVALS = central_intervals(LEVELS)  # [(80, 0, 2)]


def test_conformity_score_is_the_distance_outside_the_interval_and_negative_inside() -> None:
    quantiles = torch.tensor([[[[1.0, 2.0, 3.0]]], [[[1.0, 2.0, 3.0]]], [[[1.0, 2.0, 3.0]]]])  # (3, 1, 1, 3)
    truth = torch.tensor([[[0.5]], [[2.5]], [[4.0]]])  # (3, 1, 1): below, inside, above
    scores = conformity_scores(quantiles, truth, INTERVALS)  # (3, 1, 1, 1)
    assert scores.flatten().tolist() == [0.5, -0.5, 1.0]


def test_the_finite_sample_quantile_is_the_ceil_n_plus_1_times_1_minus_alpha_th_score() -> None:
    scores = torch.tensor([7.0, 2.0, 9.0, 1.0, 5.0, 3.0, 8.0, 4.0, 6.0, torch.nan]).view(10, 1)  # 9 finite
    widening, n = conformal_quantile(scores, torch.tensor([0.2]))
    assert n.item() == 9
    assert widening.item() == 8.0  # ceil(10 * 0.8) = 8th smallest of 1..9; the NaN (a filled target) left out
    few, n = conformal_quantile(torch.tensor([[3.0], [1.0]]), torch.tensor([0.2]))
    assert (few.item(), n.item()) == (3.0, 2)  # rank ceil(3 * 0.8) = 3 > n: the largest score
    assert fewest_scores([0.2]) == 4 and fewest_scores([0.2, 0.05]) == 19
    none, n = conformal_quantile(torch.full((3, 1), torch.nan), torch.tensor([0.2]))
    assert (none.item(), n.item()) == (0.0, 0)  # no observed truth: no widening


def test_widening_moves_the_bounds_and_a_narrowing_stops_at_the_median() -> None:
    quantiles = torch.tensor([1.0, 2.0, 3.0]).expand(1, 2, 1, 3)  # (B=1, H=2, T=1, Q=3)
    widening = torch.tensor([[[0.5]], [[-2.0]]])  # (H=2, T=1, I=1): wider at step 1, narrower than allowed at step 2
    calibrated = widen(quantiles, widening, INTERVALS, median=1)
    assert calibrated[0, 0, 0].tolist() == [0.5, 2.0, 3.5]
    assert calibrated[0, 1, 0].tolist() == [2.0, 2.0, 2.0]  # 3.0 and 1.0 would cross: clamped to the median


def test_nested_intervals_never_cross_after_widening() -> None:
    levels = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]
    intervals = central_intervals(levels)
    generator = torch.Generator().manual_seed(0)
    quantiles = torch.randn(64, 4, 2, len(levels), generator=generator).sort(-1).values  # (B, H, T, Q) increasing
    widening = 2 * torch.randn(4, 2, len(intervals), generator=generator)  # (H, T, I), some negative
    calibrated = widen(quantiles, widening, intervals, median=levels.index(0.5))
    assert (calibrated.diff(dim=-1) >= 0).all()
    assert torch.equal(calibrated[..., 3], quantiles[..., 3])  # the median (the point forecast) is untouched


@pytest.mark.parametrize("pooled", [False, True])
def test_calibrated_intervals_cover_80_percent_of_fresh_draws(pooled: bool) -> None:
    """A band fitted too narrow (+-0.5 sd instead of +-1.28) on standard normal errors: calibrated on 2,000
    validation windows of 3 steps, it covers about 80% of 20,000 new windows at every step."""
    generator = torch.Generator().manual_seed(0)

    def band(count: int) -> tuple[torch.Tensor, torch.Tensor]:
        center = torch.randn(count, 3, 1, 1, generator=generator)  # (N, H, T, 1)
        spread = torch.tensor([0.5, 1.0, 2.0]).view(1, 3, 1, 1)  # the truth's sd grows with the step
        quantiles = center + spread * torch.tensor([-0.5, 0.0, 0.5])  # (N, H, T, Q)
        truth = center[..., 0] + spread[..., 0] * torch.randn(count, 3, 1, generator=generator)  # (N, H, T)
        return quantiles, truth

    calibration = ConformalCalibration(INTERVALS, pooled=pooled)
    for _ in range(4):
        calibration.update(*band(500))
    widening, fewest = calibration.compute()
    assert widening.shape == (3, 1, 1) and fewest == (6000 if pooled else 2000)
    quantiles, truth = band(20_000)
    raw = ((truth >= quantiles[..., 0]) & (truth <= quantiles[..., 2])).float().mean().item()
    calibrated = widen(quantiles, widening, INTERVALS, median=1)
    inside = (truth >= calibrated[..., 0]) & (truth <= calibrated[..., 2])  # (N, H, T)
    assert raw == pytest.approx(0.38, abs=0.02)
    assert inside.float().mean().item() == pytest.approx(0.80, abs=0.015)
    if not pooled:  # one widening per step: each step covers 80%, not only their average
        assert inside.float().mean(dim=(0, 2)) == pytest.approx(torch.full((3,), 0.8), abs=0.02)
        assert widening[0] < widening[1] < widening[2]


def test_the_module_keeps_the_widening_as_a_checkpointed_buffer_and_applies_it_outside_training() -> None:
    model = LSTMForecaster(input_size=1, horizon=3, hidden_size=4, num_layers=1, quantiles=LEVELS)
    assert model.state_dict()["interval_widening"].shape == (3, 1, 1)
    assert (model.interval_widening == 0).all() and isinstance(model.val_conformity, ConformalCalibration)
    model.interval_widening.fill_(0.25)
    x = torch.randn(2, 5, 1)  # (B, L, F)
    raw = model(x)  # (B, H, T, Q): forward (the training path) never widens
    calibrated = model.calibrated(raw)
    torch.testing.assert_close(calibrated[..., 2] - raw[..., 2], torch.full((2, 3, 1), 0.25))
    torch.testing.assert_close(calibrated[..., 1], raw[..., 1])
    point = LSTMForecaster(input_size=1, horizon=3, hidden_size=4, num_layers=1)
    assert "interval_widening" not in point.state_dict() and point.val_conformity is None
    off = LSTMForecaster(input_size=1, horizon=3, hidden_size=4, num_layers=1, quantiles=LEVELS, calibration="none")
    assert off.val_conformity is None and "interval_widening" in off.state_dict()  # same checkpoint keys
    with pytest.raises(ValueError, match="model.calibration must be one of"):
        LSTMForecaster(quantiles=LEVELS, calibration="split")

"""The plain LSTM regressor: its head reads the last time step of each window, and shapes and options hold.

The seed's first example built ``nn.LSTM(input_size, hidden_size)`` (sequence-first) and fed it batch-first windows,
then read ``out[:, -1, :]``: the LSTM then runs *across the batch* and each forecast depends on the other windows of
its batch. :func:`check_reads_last_step` is the one test both the real regressor and copies of such bugs go through.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_lstm.model.regressor import LSTMRegressor

LOOKBACK = 8


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


class SeedBug(nn.Module):
    """A copy of the seed's bug: a sequence-first LSTM fed (B, L, F) windows, head on ``out[:, -1, :]``."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size)  # expects (L, B, F): here it reads B as time, L as batch
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)  # (B, L, hidden), but "time" runs over the batch
        return self.head(out[:, -1, :]).view(-1, 1, 1)  # (B, 1, 1)


class FirstStepHead(LSTMRegressor):
    """The other classic mix-up: the head reads the first time step's output instead of the last."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)  # (B, L, hidden)
        return self.head(out[:, 0, :]).view(-1, self.horizon, self.num_targets)


def last_step_task(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of unit noise; the answer is the value of the final input step: ``(n, L, 1) -> (n, 1, 1)``."""
    x = torch.randn(n, LOOKBACK, 1, generator=generator)
    return x, x[:, -1:, :].clone()


def check_reads_last_step(model: nn.Module, steps: int = 200) -> None:
    """Train on the last-step task, then require (1) a small held-out error and (2) per-window forecasts.

    (2): a window's forecast must be the same alone as inside a batch; a forecaster that mixes up the batch and
    time axes passes (1) by luck on this task but never (2).
    """
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(steps):
        x, y = last_step_task(64, generator)
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    x, y = last_step_task(256, generator)
    model.eval()
    with torch.no_grad():
        batched = model(x)  # (256, 1, 1)
        alone = torch.cat([model(x[i : i + 1]) for i in range(16)])  # (16, 1, 1), one window per call
    mse = nn.functional.mse_loss(batched, y).item()
    assert mse < 0.02, f"did not learn the last step's value: held-out MSE {mse:.4f} (variance 1)"
    deviation = (alone - batched[:16]).abs().max().item()
    assert deviation < 1e-5, f"a window's forecast depends on the other windows of its batch (by {deviation:.3g})"


def test_regressor_learns_the_value_of_the_last_time_step():
    check_reads_last_step(LSTMRegressor(input_size=1, num_targets=1, horizon=1, hidden_size=8, num_layers=1))


def test_two_layer_regressor_reads_the_top_layers_last_state():
    check_reads_last_step(LSTMRegressor(input_size=1, num_targets=1, horizon=1, hidden_size=6, num_layers=2))


def test_the_seed_bug_fails_the_same_check():
    with pytest.raises(AssertionError, match="depends on the other windows"):
        check_reads_last_step(SeedBug(input_size=1, hidden_size=8))


def test_a_head_on_the_first_time_step_fails_the_same_check():
    with pytest.raises(AssertionError, match="did not learn"):
        check_reads_last_step(FirstStepHead(input_size=1, num_targets=1, horizon=1, hidden_size=8, num_layers=1))


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_output_shape_is_batch_horizon_targets(bidirectional: bool, head: str):
    model = LSTMRegressor(
        3, num_targets=2, horizon=5, hidden_size=4, num_layers=2, dropout=0.1, bidirectional=bidirectional, head=head
    )
    assert model(torch.randn(7, LOOKBACK, 3)).shape == (7, 5, 2)


def test_bidirectional_head_reads_both_directions_of_the_top_layer():
    torch.manual_seed(0)
    model = LSTMRegressor(2, num_targets=1, horizon=1, hidden_size=4, num_layers=2, bidirectional=True).eval()
    x = torch.randn(3, LOOKBACK, 2)
    out, _ = model.lstm(x)  # (B, L, 2 * hidden): forward half ends at t = L-1, backward half at t = 0
    expected = torch.cat([out[:, -1, :4], out[:, 0, 4:]], dim=1)  # (B, 2 * hidden)
    torch.testing.assert_close(model(x), model.head(expected).view(3, 1, 1))


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"hidden_size": 0}, "model.hidden_size"),
        ({"num_layers": 0}, "model.num_layers"),
        ({"dropout": 1.0}, "model.dropout"),
        ({"head": "conv"}, "model.head"),
        ({"future_size": -1}, "model.future_size"),
    ],
)
def test_invalid_options_name_the_flag(kwargs: dict, option: str):
    with pytest.raises(ValueError, match=option):
        LSTMRegressor(1, 1, 1, **kwargs)


def test_without_known_future_inputs_the_network_is_unchanged():
    torch.manual_seed(0)
    plain = LSTMRegressor(2, num_targets=1, horizon=3, hidden_size=4)
    torch.manual_seed(0)
    off = LSTMRegressor(2, num_targets=1, horizon=3, hidden_size=4, future_size=0)
    assert {k: v.shape for k, v in plain.state_dict().items()} == {k: v.shape for k, v in off.state_dict().items()}
    x = torch.randn(5, LOOKBACK, 2)
    torch.testing.assert_close(plain(x), off(x), rtol=0, atol=0)  # same initialisation, same forecasts


def test_known_future_inputs_reach_the_encoder_and_each_horizon_step():
    torch.manual_seed(0)
    horizon, k = 3, 2
    model = LSTMRegressor(1, num_targets=1, horizon=horizon, hidden_size=4, future_size=k).eval()
    assert model.lstm.input_size == 1 + k and model.head.in_features == 4 + horizon * k
    x, known = torch.randn(4, LOOKBACK, 1), torch.randn(4, LOOKBACK + horizon, k)  # (B, L, F), (B, L + H, K)
    base = model(x, known)
    assert base.shape == (4, horizon, 1)
    past, future = known.clone(), known.clone()
    past[:, 0] += 1.0  # a lookback step: read by the LSTM
    future[:, LOOKBACK + 1] += 1.0  # the second horizon step: read by the head only
    assert not torch.allclose(model(x, past), base)
    _, (h_n, _) = model.lstm(torch.cat([x, future[:, :LOOKBACK]], dim=-1))
    torch.testing.assert_close(
        model(x, future), model.head(torch.cat([h_n[-1], future[:, LOOKBACK:].flatten(1)], 1)).view(4, horizon, 1)
    )
    assert not torch.allclose(model(x, future), base)


def test_known_future_inputs_of_the_wrong_shape_are_an_error():
    model = LSTMRegressor(1, num_targets=1, horizon=3, hidden_size=4, future_size=2)
    with pytest.raises(ValueError, match=r"pass known of shape \(B, 11, 2\), got None"):
        model(torch.randn(2, LOOKBACK, 1))
    with pytest.raises(ValueError, match=r"got \(2, 8, 2\)"):
        model(torch.randn(2, LOOKBACK, 1), torch.randn(2, LOOKBACK, 2))  # the horizon's values are missing

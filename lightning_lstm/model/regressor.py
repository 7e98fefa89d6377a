"""A batch-first LSTM that maps a window of inputs to a direct multi-step forecast. No Lightning here."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn


class LSTMRegressor(nn.Module):
    """LSTM over ``(B, L, F)`` inputs; a head reads the last time step's hidden state and emits ``(B, H, T)``.

    Args:
        input_size: features per time step ``F``.
        num_targets: target columns ``T``.
        horizon: forecast steps ``H``.
        hidden_size: LSTM units per layer (and direction).
        num_layers: stacked LSTM layers.
        dropout: dropout between LSTM layers (needs ``num_layers > 1``) and in the MLP head.
        bidirectional: also read the window backwards.
        head: ``linear``, or ``mlp`` (one hidden layer of ``hidden_size`` with GELU).
    """

    def __init__(
        self,
        input_size: int,
        num_targets: int,
        horizon: int,
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.0,
        bidirectional: bool = False,
        head: Literal["linear", "mlp"] = "linear",
    ) -> None:
        super().__init__()
        for key, value in (
            ("input_size", input_size),
            ("num_targets", num_targets),
            ("horizon", horizon),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
        ):
            if value < 1:
                raise ValueError(f"model.{key} must be >= 1, got {value}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {dropout}")
        if head not in ("linear", "mlp"):
            raise ValueError(f"model.head must be 'linear' or 'mlp', got {head!r}")
        self.horizon, self.num_targets = horizon, num_targets
        self.lstm = nn.LSTM(
            input_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        self.directions = 2 if bidirectional else 1
        features = hidden_size * self.directions
        outputs = horizon * num_targets
        if head == "linear":
            self.head = nn.Linear(features, outputs)
        else:
            self.head = nn.Sequential(
                nn.Linear(features, hidden_size), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden_size, outputs)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h_n, _) = self.lstm(x)  # x: (B, L, F); h_n: (layers * directions, B, hidden)
        last = h_n[-self.directions :]  # the top layer's final state of each direction: (directions, B, hidden)
        last = last.transpose(0, 1).reshape(x.shape[0], -1)  # (B, directions * hidden)
        return self.head(last).view(-1, self.horizon, self.num_targets)  # (B, H, T)

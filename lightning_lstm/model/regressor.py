"""A batch-first LSTM that maps a window of inputs to a direct multi-step forecast. No Lightning here.

Known-future inputs (``future_size`` K > 0: calendar features, planned events, forecasts of temperature) are read
twice: the encoder LSTM reads them beside the past features for the lookback steps, and the head reads the horizon's
values beside the LSTM's last hidden state, so each forecast step sees what is known about it.

With ``quantiles`` the head emits one value per level and the outputs are non-crossing quantiles ``(B, H, T, Q)``
(:func:`~lightning_lstm.model.quantiles.non_crossing`); without, the point forecast ``(B, H, T)``.

With ``series_embedding`` N > 0 (panels) each series has a learned vector of N values (``nn.Embedding``); the LSTM reads
it beside the inputs at every lookback step and the head beside the last hidden state, so one global model can tell
the series apart. The table's size (the number of series) is known only once the data is read: ``num_series``, or
:meth:`LSTMRegressor.set_num_series` later (before the optimizer is built).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import nn

from lightning_lstm.model.quantiles import MEDIAN, check_quantiles, non_crossing

Head = Literal["linear", "mlp"]
HEADS = get_args(Head)


class LSTMRegressor(nn.Module):
    """LSTM over ``(B, L, F)`` inputs; a head reads the last time step's hidden state and emits ``(B, H, T)``, or
    ``(B, H, T, Q)`` increasing quantiles with ``quantiles``.

    With ``future_size`` K the forward pass also takes ``known`` ``(B, L + H, K)``: the LSTM reads ``F + K`` features
    per step and the head the hidden state plus the ``H * K`` known-future values of the horizon.

    Args:
        input_size: features per time step ``F``.
        num_targets: target columns ``T``.
        horizon: forecast steps ``H``.
        hidden_size: LSTM units per layer (and direction).
        num_layers: stacked LSTM layers.
        dropout: dropout between LSTM layers (needs ``num_layers > 1``) and in the MLP head.
        bidirectional: also read the window backwards.
        head: ``linear``, or ``mlp`` (one hidden layer of ``hidden_size`` with GELU).
        future_size: known-future inputs per step ``K`` (0: none, the model reads ``x`` alone).
        quantiles: increasing levels with 0.5 among them (``None``: a point forecast).
        series_embedding: values per series in the learned series embedding ``N`` (0: none).
        num_series: rows of the embedding table (the training series); 0 leaves it to :meth:`set_num_series`.
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
        head: Head = "linear",
        future_size: int = 0,
        quantiles: list[float] | None = None,
        series_embedding: int = 0,
        num_series: int = 0,
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
        if future_size < 0:
            raise ValueError(f"model.future_size must be >= 0, got {future_size}")
        if series_embedding < 0:
            raise ValueError(f"model.series_embedding must be >= 0 (0: off), got {series_embedding}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {dropout}")
        if head not in HEADS:
            raise ValueError(f"model.head must be one of {list(HEADS)}, got {head!r}")
        self.horizon, self.num_targets, self.future_size = horizon, num_targets, future_size
        self.series_embedding = series_embedding
        self.series_vectors: nn.Embedding | None = None  # (S, N), built by set_num_series
        if series_embedding and num_series:
            self.set_num_series(num_series)
        self.quantiles = check_quantiles(quantiles)
        self.median_index = self.quantiles.index(MEDIAN) if self.quantiles else None
        self.lstm = nn.LSTM(
            input_size + future_size + series_embedding,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
        )
        self.directions = 2 if bidirectional else 1
        features = hidden_size * self.directions + horizon * future_size + series_embedding
        outputs = horizon * num_targets * (len(self.quantiles) if self.quantiles else 1)
        if head == "linear":
            self.head = nn.Linear(features, outputs)
        else:
            self.head = nn.Sequential(
                nn.Linear(features, hidden_size), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden_size, outputs)
            )

    def set_num_series(self, num_series: int) -> None:
        """Build the series embedding with one row per training series (a fresh table, N(0, 1) as ``nn.Embedding``)."""
        if not self.series_embedding:
            raise ValueError("set_num_series needs model.series_embedding > 0")
        if num_series < 1:
            raise ValueError(f"model.series_embedding needs at least one series, got {num_series}")
        self.series_vectors = nn.Embedding(num_series, self.series_embedding)

    @property
    def num_series(self) -> int:
        """Rows of the series embedding (0 without one)."""
        return 0 if self.series_vectors is None else self.series_vectors.num_embeddings

    def forward(
        self, x: torch.Tensor, known: torch.Tensor | None = None, series: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x`` (B, L, F), with ``future_size`` ``known`` (B, L + H, K), with ``series_embedding`` ``series`` (B,)
        training-series indices -> (B, H, T), or (B, H, T, Q)."""
        lookback = x.shape[1]
        if self.future_size:
            if known is None or known.shape[1:] != (lookback + self.horizon, self.future_size):
                shape = None if known is None else tuple(known.shape)
                raise ValueError(
                    f"this model reads known-future inputs (future_size={self.future_size}): pass known of shape "
                    f"(B, {lookback + self.horizon}, {self.future_size}), got {shape}"
                )
            x = torch.cat([x, known[:, :lookback]], dim=-1)  # (B, L, F) + (B, L, K) -> (B, L, F + K)
        vectors = self._series_vectors(series, x.shape[0])  # (B, N), or None
        if vectors is not None:
            x = torch.cat([x, vectors[:, None, :].expand(-1, lookback, -1)], dim=-1)  # (B, L, F + K + N)
        _, (h_n, _) = self.lstm(x)  # h_n: (layers * directions, B, hidden)
        last = h_n[-self.directions :]  # the top layer's final state of each direction: (directions, B, hidden)
        last = last.transpose(0, 1).reshape(x.shape[0], -1)  # (B, directions * hidden)
        if self.future_size:
            last = torch.cat([last, known[:, lookback:].flatten(1)], dim=1)  # (B, D) + (B, H * K) -> (B, D + H * K)
        if vectors is not None:
            last = torch.cat([last, vectors], dim=1)  # (B, D + H * K + N)
        if self.quantiles is None:
            return self.head(last).view(-1, self.horizon, self.num_targets)  # (B, H, T)
        raw = self.head(last).view(-1, self.horizon, self.num_targets, len(self.quantiles))  # (B, H, T, Q)
        return non_crossing(raw, self.median_index)

    def _series_vectors(self, series: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        """The (B, N) embedding rows of ``series`` (B,); None without an embedding; a ValueError when they cannot
        be read."""
        if not self.series_embedding:
            return None
        if self.series_vectors is None:
            raise ValueError(
                f"model.series_embedding = {self.series_embedding}, but the embedding has no table yet: it is built "
                "from the training data's series at fit (or read from a checkpoint)"
            )
        if series is None or series.shape != (batch,):
            shape = None if series is None else tuple(series.shape)
            raise ValueError(
                f"model.series_embedding = {self.series_embedding} reads each window's training-series index: pass "
                f"series of shape ({batch},), got {shape}"
            )
        return self.series_vectors(series)  # (B, N)

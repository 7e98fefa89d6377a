"""``model.residual``: the network predicts a correction to the seasonal naive, added on the scaled data.

With ``seasonal_naive`` each batch carries ``seasonal_base`` ``(B, H, T)``: the scaled target one season before each
forecast step, served by the data module (:mod:`lightning_lstm.data.seasonal_lags`; the season is the first of
``data.seasonal_lags`` >= the horizon, else ``data.season_length``). Outputs are then ``network + base``, and mapped
back to the original scale as any forecast, so metrics, plots and predictions read the sum.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

Residual = Literal["none", "seasonal_naive"]
RESIDUALS = get_args(Residual)


def add_seasonal_base(output: torch.Tensor, seasonal_base: torch.Tensor | None) -> torch.Tensor:
    """``output`` (B, H, T) or quantiles (B, H, T, Q) plus ``seasonal_base`` (B, H, T); a ValueError without it."""
    if seasonal_base is None:
        raise ValueError(
            "model.residual: seasonal_naive needs each batch's seasonal_base (the scaled value one season earlier), "
            "which the package's TimeSeriesDataModule serves once it knows the season: set data.seasonal_lags or "
            "data.season_length"
        )
    return output + (seasonal_base.unsqueeze(-1) if output.dim() == 4 else seasonal_base)  # (B, H, T[, Q])

"""Scaling per column: ``scaled = (value - center) / scale``, fitted on the training span only, and its inverse.

:func:`to_original_scale` is the one way back to the data's units: the model's validation, test and predict outputs
go through it (``LSTMForecaster.to_original_scale`` calls it), and the round-trip tests check it.
"""

from __future__ import annotations

import warnings
from typing import Literal, TypeVar, get_args

import numpy as np
import torch

from lightning_lstm.data.column_stats import mean_std, quantiles_inplace

Scaler = Literal["standard", "minmax", "robust", "none"]
SCALERS = get_args(Scaler)
Array = TypeVar("Array", np.ndarray, torch.Tensor)


def scaling_statistics(column: np.ndarray, method: Scaler, name: str) -> tuple[float, float]:
    """``(center, scale)`` of one column of finite (already clipped) training values; may reorder ``column``.

    ``standard``: mean and population std. ``minmax``: min and range, mapping to [0, 1]. ``robust``: median and IQR.
    ``none``: ``(0, 1)``. A constant column has no spread: it keeps scale 1 with a warning instead of dividing by zero.

    Args:
        column: ``(n,)`` finite training values (``n >= 1``).
        method: one of :data:`SCALERS`.
        name: the column, file and series for the warning.
    """
    if method not in SCALERS:
        raise ValueError(f"data.scaler must be one of {SCALERS}, got {method!r}")
    if method == "none":
        return 0.0, 1.0
    if method == "standard":
        center, scale = mean_std(column)
    elif method == "minmax":
        center, top = float(column.min()), float(column.max())
        scale = top - center
    else:
        q1, center, q3 = quantiles_inplace(column, [0.25, 0.5, 0.75])
        scale = q3 - q1
    if not scale > 1e-12 * max(1.0, abs(center)):
        warnings.warn(
            f"{name} is constant on the training span: {method} scaling uses scale 1 (values only shifted by "
            f"{float(center):g}). Drop the column, or use data.scaler: none to silence this.",
            stacklevel=2,
        )
        scale = 1.0
    return float(center), float(scale)


def transform(values: Array, center: Array, scale: Array) -> Array:
    """Original units -> scaled units (arrays or tensors); ``center`` and ``scale`` broadcast against ``values``."""
    return (values - center) / scale


def inverse(scaled: Array, center: Array, scale: Array) -> Array:
    """Scaled units -> original units: ``inverse(transform(x, c, s), c, s) == x`` up to float rounding."""
    return scaled * scale + center


def to_original_scale(prediction: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Scaled ``(B, H, T)`` model outputs in the data's units, with each window's ``target_center`` / ``target_scale``.

    The batch's ``(B, T)`` statistics are those of the window's series (shifted by its level with ``window_norm: last``,
    see :class:`~lightning_lstm.data.dataset.WindowDataset`), so ``to_original_scale(batch["y"], batch)`` gives back
    the (clipped) targets.
    """
    return inverse(prediction, batch["target_center"][:, None, :], batch["target_scale"][:, None, :])  # (B, H, T)

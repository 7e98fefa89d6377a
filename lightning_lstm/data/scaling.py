"""Scaling statistics per column: ``scaled = (value - center) / scale``, fitted on the training span only."""

from __future__ import annotations

import warnings

import numpy as np

SCALERS = ("standard", "minmax", "robust", "none")


def scaling_statistics(column: np.ndarray, method: str, name: str) -> tuple[float, float]:
    """``(center, scale)`` of one column of (already clipped) training values; NaN ignored.

    ``standard``: mean and std. ``minmax``: min and range, mapping to [0, 1]. ``robust``: median and IQR.
    A constant column has no spread: it keeps scale 1 with a warning instead of dividing by zero.
    """
    if method not in SCALERS:
        raise ValueError(f"data.scaler must be one of {SCALERS}, got {method!r}")
    if method == "none":
        return 0.0, 1.0
    column = column[np.isfinite(column)].astype(np.float64)
    if method == "standard":
        center, scale = column.mean(), column.std()
    elif method == "minmax":
        center, scale = column.min(), column.max() - column.min()
    else:
        q1, center, q3 = np.quantile(column, [0.25, 0.5, 0.75])
        scale = q3 - q1
    if not scale > 1e-12 * max(1.0, abs(center)):
        warnings.warn(f"column {name!r} is constant on the training span: {method} scaling keeps scale 1", stacklevel=2)
        scale = 1.0
    return float(center), float(scale)

"""Outlier clipping: bounds per column, fitted on the training span only (``data.outliers``)."""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from lightning_lstm.data.column_stats import mean_std, quantiles_inplace
from lightning_lstm.robust import MAD_TO_SIGMA, median_abs_deviation

OutlierMethod = Literal["none", "quantile", "iqr", "mad", "zscore"]
OUTLIER_METHODS = get_args(OutlierMethod)
DEFAULT_K = {"iqr": 3.0, "mad": 5.0, "zscore": 5.0}


def check_outlier_options(method: str, quantiles: tuple[float, ...], k: float | None) -> None:
    """Raise a ValueError naming the ``data.`` key when the clipping options cannot work."""
    if method not in OUTLIER_METHODS:
        raise ValueError(f"data.outliers must be one of {OUTLIER_METHODS}, got {method!r}")
    if len(quantiles) != 2:
        raise ValueError(f"data.outlier_quantiles must be two numbers [low, high], got {list(quantiles)}")
    low, high = quantiles
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(
            f"data.outlier_quantiles must satisfy 0 <= low < high <= 1, got {list(quantiles)}; "
            "for example [0.005, 0.995]"
        )
    if k is not None and not k > 0:
        raise ValueError(f"data.outlier_k must be > 0, got {k}; the defaults are {DEFAULT_K}")


def clip_bounds(
    column: np.ndarray, method: OutlierMethod, quantiles: tuple[float, float], k: float | None
) -> tuple[float, float]:
    """``(low, high)`` for one column of finite training values (may reorder it); ``(-inf, inf)`` for ``none``.

    ``quantile``: the given quantiles. ``iqr``: ``[q1 - k*IQR, q3 + k*IQR]`` (k=3, Tukey's far out).
    ``mad``: ``median +- k * 1.4826 * MAD`` (k=5). ``zscore``: ``mean +- k * std`` (k=5).
    """
    if method == "none":
        return -np.inf, np.inf
    k = DEFAULT_K.get(method) if k is None else k
    if method == "quantile":
        low, high = quantiles_inplace(column, list(quantiles))
    elif method == "iqr":
        q1, q3 = quantiles_inplace(column, [0.25, 0.75])
        low, high = q1 - k * (q3 - q1), q3 + k * (q3 - q1)
    elif method == "mad":
        median = float(quantiles_inplace(column, [0.5])[0])
        spread = MAD_TO_SIGMA * median_abs_deviation(column, median)
        low, high = median - k * spread, median + k * spread
    else:
        mean, std = mean_std(column)
        low, high = mean - k * std, mean + k * std
    return float(low), float(high)

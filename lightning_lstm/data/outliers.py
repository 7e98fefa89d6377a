"""Outlier clipping bounds per column, fitted on the training span only."""

from __future__ import annotations

import numpy as np

OUTLIER_METHODS = ("none", "quantile", "iqr", "mad", "zscore")
DEFAULT_K = {"iqr": 3.0, "mad": 5.0, "zscore": 5.0}


def check_outlier_options(method: str, quantiles: tuple[float, float], k: float | None) -> None:
    if method not in OUTLIER_METHODS:
        raise ValueError(f"data.outliers must be one of {OUTLIER_METHODS}, got {method!r}")
    low, high = quantiles
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"data.outlier_quantiles must satisfy 0 <= low < high <= 1, got {list(quantiles)}")
    if k is not None and k <= 0:
        raise ValueError(f"data.outlier_k must be > 0, got {k}")


def clip_bounds(column: np.ndarray, method: str, quantiles: tuple[float, float], k: float | None) -> tuple[float, float]:
    """``(low, high)`` for one column of training values (NaN ignored); ``(-inf, inf)`` for ``none``.

    ``quantile``: the given quantiles. ``iqr``: ``[q1 - k*IQR, q3 + k*IQR]`` (k=3, Tukey's far out).
    ``mad``: ``median +- k * 1.4826 * MAD`` (k=5). ``zscore``: ``mean +- k * std`` (k=5).
    """
    if method == "none":
        return -np.inf, np.inf
    column = column[np.isfinite(column)].astype(np.float64)
    k = DEFAULT_K.get(method) if k is None else k
    if method == "quantile":
        low, high = np.quantile(column, quantiles)
    elif method == "iqr":
        q1, q3 = np.quantile(column, [0.25, 0.75])
        low, high = q1 - k * (q3 - q1), q3 + k * (q3 - q1)
    elif method == "mad":
        median = np.median(column)
        spread = 1.4826 * np.median(np.abs(column - median))
        low, high = median - k * spread, median + k * spread
    else:
        mean, std = column.mean(), column.std()
        low, high = mean - k * std, mean + k * std
    return float(low), float(high)

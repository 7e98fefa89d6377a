"""Scores of backtest forecasts against the seasonal-naive forecasts of the same steps (scripts/benchmark_forecast.py).

A backtest table (``predict --data.predict_mode backtest``) holds one row per (forecast origin, step): ``timestamp``,
``step``, the forecast ``<target>`` (the median under ``model.quantiles``), ``<target>_true`` and, with quantiles,
``<target>_q10`` / ``<target>_q90``. The seasonal naive of a row repeats the value ``m * ceil(step / m)`` steps
before its timestamp: the last value one season before it that was known at the forecast origin.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def history(frame, target: str) -> pd.Series:
    """The resampled series the model saw (original scale, NaN where missing), indexed by int64 ns timestamps."""
    column = frame.columns.index(target)
    return pd.Series(np.asarray(frame.values[:, column], dtype=np.float64), index=np.asarray(frame.times))


def seasonal_naive(series: pd.Series, time_step: int, table: pd.DataFrame, m: int) -> np.ndarray:
    """Per backtest row, the value ``m * ceil(step / m)`` steps before its timestamp (NaN where there is none).

    Args:
        series: :func:`history`.
        time_step: ns between rows.
        table: backtest rows (``timestamp``, ``step``).
        m: the season in steps (24: one day of hours, 168: one week).
    """
    back = m * -(-table["step"].to_numpy() // m) * time_step
    when = table["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64) - back
    return series.reindex(when).to_numpy()


def mase_scale(series: pd.Series, train_rows: int, m: int) -> float:
    """The MASE denominator: the mean absolute error of the one-step-ahead seasonal naive (season ``m``) over the
    first ``train_rows`` rows (the training span), missing values skipped."""
    train = series.to_numpy()[:train_rows]
    return float(np.nanmean(np.abs(train[m:] - train[:-m])))


def score(
    table: pd.DataFrame, target: str, series: pd.Series, time_step: int, seasons: dict[str, int], scale: float
) -> dict[str, float]:
    """MAE, MASE (``scale``: :func:`mase_scale`), the ratio to each seasonal naive's MAE on the same steps (the steps
    where that naive and the truth exist) and to the better of them, and the 80% interval's coverage when the table
    has ``<target>_q10`` and ``<target>_q90``.

    Args:
        table: backtest rows.
        target: the target column.
        series: :func:`history`.
        time_step: ns between rows.
        seasons: label -> season in steps, e.g. ``{"day": 24, "week": 168}``.
        scale: the MASE denominator.
    """
    truth, forecast = table[f"{target}_true"].to_numpy(), table[target].to_numpy()
    naives = {label: seasonal_naive(series, time_step, table, m) for label, m in seasons.items()}
    ok = np.isfinite(truth) & np.isfinite(forecast)
    for naive in naives.values():
        ok &= np.isfinite(naive)
    mae = float(np.mean(np.abs(forecast[ok] - truth[ok])))
    result = {"mae": mae, "mase": mae / scale, "steps": int(ok.sum())}
    for label, naive in naives.items():
        result[f"naive_{label}"] = float(np.mean(np.abs(naive[ok] - truth[ok])))
        result[f"ratio_{label}"] = mae / result[f"naive_{label}"]
    result["ratio_best"] = mae / min(result[f"naive_{label}"] for label in seasons)
    low, high = f"{target}_q10", f"{target}_q90"
    if low in table and high in table:
        inside = (table[low].to_numpy() <= truth) & (truth <= table[high].to_numpy())
        result["coverage_80"] = float(np.mean(inside[ok]))
    return result


def same_steps(ours: pd.DataFrame, peer: pd.DataFrame, target: str) -> pd.DataFrame:
    """The peer's forecasts (``timestamp``, ``forecast``) laid on our backtest rows, matched on the forecast step's
    timestamp and its origin; ``ValueError`` naming the count when the peer misses any of our steps."""
    keys = ["forecast_origin", "timestamp"]
    merged = ours[[*keys, "step", f"{target}_true"]].merge(peer, on=keys, how="left", validate="one_to_one")
    missing = int(merged["forecast"].isna().sum())
    if missing:
        raise ValueError(
            f"the peer forecast {len(merged) - missing} of our {len(merged)} backtest steps ({missing} "
            "missing): it must forecast every (forecast_origin, timestamp) of the backtest table"
        )
    return merged.rename(columns={"forecast": target})

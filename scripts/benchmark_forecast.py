"""Forecast quality on three real hourly series with daily and weekly cycles: the recipe, its ablations, quantiles
and a peer LSTM, against the one-day and one-week seasonal naive of the same steps.

Run: ``OMP_NUM_THREADS=1 nice -n 15 .venv/bin/python scripts/benchmark_forecast.py`` (34.5 CPU minutes, peer
included; 41 minutes of wall time on the 2 shared cores here); writes ``docs/figures/forecast_quality.md`` and
``docs/figures/forecast_week_band.png`` (without ``--output`` / ``--figure``, also when only some arms run).
``--quick`` (one seed, one epoch of 10 batches, no peer unless ``--peer neuralforecast``) checks that our arms run;
``--arms 4,5,6`` runs some arms only, ``--extra=--model.calibration=pooled`` adds fit options to every arm (write it
with ``=``: argparse takes a separate value that starts with ``--`` and holds no space for an unknown option).
``--panel`` runs the panel instead (:mod:`scripts.forecast_panel`: 115 hourly series, one global model with and without
``model.series_embedding``, time and peak memory per epoch); it writes ``docs/figures/forecast_panel.md``.

Each (series, arm, seed) is fitted through the CLI (``lightning_lstm.cli.main``) and its best checkpoint is
backtested with ``data.backtest_stride = horizon``: rolling origins one horizon apart over the test span (the last
20% of the series), each test step forecast once. :mod:`scripts.forecast_scoring` scores the forecasts against the
seasonal naive (the value one day, and one week, before each step, known at the origin) on the same steps: MAE, MASE
(scaled by the training span's one-day seasonal-naive MAE) and the 80% interval's coverage, calibrated
(``model.calibration``) and as trained (the same checkpoint without its widening). The 3 seeds'
checkpoints are also averaged (``--predictions.ensemble``). The peer, neuralforecast's ``LSTM`` (its own venv,
:mod:`scripts.forecast_peer`), gets the same series, lookback, horizon, calendar inputs, training span, size,
learning rate, batch size and optimizer steps, and forecasts the same origins.
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

import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a file: the helpers beside it are the package scripts

from lightning_lstm.cli import build_cli  # noqa: E402
from scripts.forecast_figure import plot_week  # noqa: E402
from scripts.forecast_panel import (  # noqa: E402
    PANEL_ARMS,
    PANEL_CONFIG,
    EpochMeter,
    epoch_summary,
    panel_markdown,
    panel_score,
)
from scripts.forecast_peer import ensure_venv, run_peer  # noqa: E402
from scripts.forecast_scoring import history, mase_scale, same_steps, score  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures"
CONFIG = REPO / "configs" / "electricity_hourly.yaml"
OUTPUT = REPO / "docs" / "figures" / "forecast_quality.md"
PANEL_OUTPUT = REPO / "docs" / "figures" / "forecast_panel.md"
FIGURE = REPO / "docs" / "figures" / "forecast_week_band.png"
QUIET = [
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--forecast_plot.every_n_epochs=0",
]
SEASONS = {"day": 24, "week": 168}
PANEL_PATH = "scripts/forecast_series/nyc_flights_routes_hourly.csv.gz"
PEDESTRIANS = ["--data.time_column=time", "--data.duplicate_timestamps=mean", "--data.batch_size=256"]

# Every arm spells out all of the new inputs, so that a row's meaning does not depend on the config's defaults.
RECIPE = [
    "--data.calendar=[hour_of_day, day_of_week]",
    "--data.seasonal_lags=[24, 168]",
    "--model.residual=seasonal_naive",
    "--model.loss=l1",
    "--model.quantiles=null",
    "--data.window_norm=none",
]
STANDARD = ["--data.window_norm=standard"]
ARMS = [
    ("recipe: calendar + lags [24, 168] + residual over the 1-day naive; l1", RECIPE),
    ("- calendar", [*RECIPE, "--data.calendar=[]"]),
    ("- lags (residual over the 1-day naive kept)", [*RECIPE, "--data.seasonal_lags=[]"]),
    ("- residual", [*RECIPE, "--model.residual=none"]),
    ("recipe + quantiles [0.1, 0.5, 0.9] (pinball; the median scored)", [*RECIPE, "--model.quantiles=[0.1, 0.5, 0.9]"]),
    ("recipe, data.window_norm standard (each window by its own mean and spread)", [*RECIPE, *STANDARD]),
    (
        "recipe + quantiles, data.window_norm standard",
        [*RECIPE, *STANDARD, "--model.quantiles=[0.1, 0.5, 0.9]"],
    ),
    ("window_norm standard - calendar", [*RECIPE, *STANDARD, "--data.calendar=[]"]),
    ("window_norm standard - lags", [*RECIPE, *STANDARD, "--data.seasonal_lags=[]"]),
    ("window_norm standard - residual", [*RECIPE, *STANDARD, "--model.residual=none"]),
]
QUANTILE_ARM = 4  # runs first, beside the recipe
FIGURE_ARM = 6  # configs/electricity_hourly.yaml with quantiles: the figure's arm
PEER = len(ARMS)  # the peer's index after the arms
LABELS = [label for label, _ in ARMS] + ["peer: neuralforecast LSTM, calendar, same steps and budget"]


@dataclass
class Series:
    """One real series: its label, file, target column, the epochs of a full run and extra CLI arguments."""

    name: str
    key: str
    path: Path
    target: str
    epochs: int
    extra: list[str] = field(default_factory=list)


SERIES = [
    Series(
        "electricity demand, England and Wales (Taylor 2003), 3 months",
        "taylor",
        FIXTURES / "taylor_electricity_halfhourly.csv",
        "demand",
        30,
    ),
    Series(
        "pedestrians, 45 Queen Street, Auckland, 3 years",
        "queen",
        FIXTURES / "auckland_pedestrians_hourly.csv",
        "queen_st_45",
        4,
        [*PEDESTRIANS, "--data.target_columns=[queen_st_45]"],
    ),
    Series(
        "pedestrians, 150 K Road, Auckland, 3 years",
        "kroad",
        FIXTURES / "auckland_pedestrians_hourly.csv",
        "k_road_150",
        4,
        [*PEDESTRIANS, "--data.target_columns=[k_road_150]"],
    ),
]


def backtest(config: Path, ckpt: str, out: Path, ensemble: list[str] | None = None):
    """Our backtest table of ``ckpt`` (and the CLI, whose datamodule holds the series and its splits)."""
    args = ["predict", "--config", str(config), f"--ckpt_path={ckpt}", "--data.predict_mode=backtest"]
    args += [f"--predictions.output_path={out}", "--predictions.overwrite=true"]
    if ensemble:
        args.append(f"--predictions.ensemble=[{', '.join(ensemble)}]")
    cli = build_cli(args)
    return pd.read_csv(out, parse_dates=["forecast_origin", "timestamp"]), cli.datamodule


def run_arm(series: Series, index: int, seeds: list[int], root: Path, quick: bool, extra: list[str]) -> dict:
    """Fit and backtest ``series`` with arm ``index`` for every seed, then the seeds' ensemble. Keeps per seed the
    scores, the backtest table, the optimizer steps and what the peer needs to see the same series."""
    runs, ckpts = [], []
    for seed in seeds:
        name = f"{series.key}_arm{index}_s{seed}"
        args = ["--config", str(CONFIG), f"--data.path={series.path}", f"--seed_everything={seed}", *QUIET]
        args += [f"--trainer.logger.init_args.save_dir={root}", f"--trainer.logger.init_args.name={name}"]
        epochs = (
            ["--trainer.max_epochs=1", "--trainer.limit_train_batches=10"]
            if quick
            else [f"--trainer.max_epochs={series.epochs}"]
        )
        fit = build_cli(["fit", *args, *series.extra, *ARMS[index][1], *epochs, *extra])
        best, config = fit.trainer.checkpoint_callback.best_model_path, Path(fit.trainer.log_dir) / "config.yaml"
        table, data = backtest(config, best, root / f"{name}.csv")
        values = history(data.frame, series.target)
        scale = mase_scale(values, int(data.bounds.val_row[0]), SEASONS["day"])
        before = {}
        if has_quantiles(index):  # the same weights with the intervals as trained: coverage before calibration
            copy, widening = uncalibrated(best, root / f"{name}_uncalibrated.ckpt")
            raw, _ = backtest(config, copy, root / f"{name}_raw.csv")
            raw_score = score(raw, series.target, values, data.frame.time_step, SEASONS, scale)
            before = {"coverage_80_uncalibrated": raw_score["coverage_80"], "widening": widening}
        runs.append(
            {
                **score(table, series.target, values, data.frame.time_step, SEASONS, scale),
                **before,
                "table": table,
                "steps_trained": fit.trainer.global_step,
                "history": values,
                "scale": scale,
                "seed": seed,
                "val_rows": int(data.bounds.test_row[0] - data.bounds.val_row[0]),
                "config": config,
            }
        )
        ckpts.append(best)
    result = {"runs": runs}
    if len(ckpts) > 1:
        table, data = backtest(runs[0]["config"], ckpts[0], root / f"{series.key}_arm{index}_ensemble.csv", ckpts[1:])
        result["ensemble"] = score(
            table, series.target, runs[0]["history"], data.frame.time_step, SEASONS, runs[0]["scale"]
        )
    return result


def run_panel(
    seeds: list[int], root: Path, quick: bool, extra: list[str], output: Path | None, flush: bool, arms: list[int]
) -> str:
    """The panel ``arms`` (indices into PANEL_ARMS) for every seed (seed by seed, so an interrupted run holds each
    arm's first seeds): fit with :class:`EpochMeter`, backtest the best checkpoint, score each series
    (:func:`scripts.forecast_panel.panel_score`); the markdown table, rewritten after every fit. One process: the
    peak memory of a later fit includes what earlier fits left on the heap (run one arm and seed per process for a
    clean figure: ``--arms 1 --seeds 0``)."""
    chosen = [PANEL_ARMS[i] for i in arms]
    started, done, facts = time.time(), {label: [] for label, _ in chosen}, {}
    for seed in seeds:
        for label, options in chosen:
            name = f"panel_{options[0].split('=')[1]}_s{seed}"
            args = ["--config", str(PANEL_CONFIG), f"--data.path={REPO / PANEL_PATH}", f"--seed_everything={seed}"]
            args += [*QUIET, "--trainer.callbacks+=scripts.forecast_panel.EpochMeter"]
            args += [f"--trainer.logger.init_args.save_dir={root}", f"--trainer.logger.init_args.name={name}"]
            quick_args = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=10", "--trainer.limit_val_batches=5"]
            fit = build_cli(["fit", *args, *options, *(quick_args if quick else []), *extra])
            meter = next(c for c in fit.trainer.callbacks if isinstance(c, EpochMeter))
            config = Path(fit.trainer.log_dir) / "config.yaml"
            table, data = backtest(config, fit.trainer.checkpoint_callback.best_model_path, root / f"{name}.csv")
            run = {**panel_score(table, data, SEASONS), **epoch_summary(meter.records), "seed": seed}
            done[label].append(run)
            print(f"panel | {label} | seed {seed}: {summary({'runs': [run]})}, {meter.records}", flush=True)
            facts = {
                "series": data.frame.num_series,
                "rows": len(data.frame.values),
                "values_mb": data.frame.values.nbytes / 1e6,
                "epochs": run["epochs"],
                "train_windows": len(fit.datamodule.window_index("train")),
                "batch_size": fit.datamodule.hparams.batch_size,
                "steps": run["steps"],
            }
            results = [(label, runs) for label, runs in done.items() if runs]
            text = panel_markdown(results, facts, seeds, (time.time() - started) / 60, flush)
            if output is not None:  # after every fit: an interrupted run keeps what it finished
                output.write_text(text)
    return text


def has_quantiles(index: int) -> bool:
    return any(a.startswith("--model.quantiles=[") for a in ARMS[index][1])


def uncalibrated(ckpt: str, path: Path) -> tuple[str, float]:
    """A copy of ``ckpt`` without its conformal widening (``interval_widening``), as a checkpoint written before
    ``model.calibration``: predict then writes the pinball loss's intervals as trained. Also the mean widening over
    the horizon steps, in scaled units."""
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    widening = checkpoint["state_dict"].pop("interval_widening")  # (H, T, I)
    torch.save(checkpoint, path)
    return str(path), float(widening.mean())


def run_peers(series: Series, recipe: dict, python: Path, root: Path) -> dict:
    """The peer on each seed's series and origins, with the optimizer steps our recipe took for that seed."""
    runs = []
    for run in recipe["runs"]:
        spec = {
            "horizon": 24,
            "lookback": 168,
            "freq": "h",
            "hidden_size": 32,
            "num_layers": 2,
            "lr": 0.003,
            "max_steps": run["steps_trained"],
            "batch_size": batch_size(series),
            "seed": run["seed"],
            "val_rows": run["val_rows"],
        }
        peer = run_peer(python, root, f"{series.key}_peer_s{run['seed']}", run["history"], run["table"], spec)
        table = same_steps(run["table"], peer, series.target)
        runs.append(
            score(
                table,
                series.target,
                run["history"],
                int(run["history"].index[1] - run["history"].index[0]),
                SEASONS,
                run["scale"],
            )
        )
    return {"runs": runs}


def batch_size(series: Series) -> int:
    return int(next((a.split("=")[1] for a in series.extra if a.startswith("--data.batch_size=")), 64))


def mean_sd(values: list[float], digits: int = 3) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def markdown(results: list[tuple[Series, str, dict]], seeds: list[int], minutes: float, planned: int) -> str:
    partial = [f"**Partial: {len(results)} of {planned} rows finished.**", ""] if len(results) < planned else []
    lines = [
        *partial,
        "# Forecast quality: the recipe, its ablations, quantiles and a peer LSTM against the seasonal naive",
        "",
        f"Written by `scripts/benchmark_forecast.py` ({len(seeds)} seed(s): {seeds}; {minutes:.1f} min here).",
        "Backtest: rolling origins one horizon (24 h) apart over the test span (the last 20% of each series), each",
        "test step forecast once, lookback 168 h. MAE in the data's units; MASE scaled by the training span's",
        "one-day seasonal-naive MAE. Ratios: the model's MAE over a seasonal naive's MAE on the same steps (the value",
        "one day or one week before each step); below 1 beats it; `better` is the lower of the two naives' MAE.",
        "Coverage: the share of test steps inside the 10%-90% quantiles (the 80% interval), after the split-conformal",
        "calibration on the validation span (`model.calibration: per_step`, the default) and, in brackets, of the same",
        "checkpoint's intervals as trained (its widening removed).",
        "",
        "| series | arm | MAE (mean ± sd over seeds) | MASE | x 1-day naive | x 1-week naive | x better naive "
        "| ensemble of the seeds: x better naive | 80% coverage |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for series, label, result in results:
        runs, ensemble = result["runs"], result.get("ensemble")
        together = f"{ensemble['ratio_best']:.3f}" if ensemble else "-"
        coverage = mean_sd([r["coverage_80"] for r in runs]) if "coverage_80" in runs[0] else "-"
        if "coverage_80_uncalibrated" in runs[0]:
            coverage += f" ({mean_sd([r['coverage_80_uncalibrated'] for r in runs])})"
        lines.append(
            f"| {series.name} | {label} | {mean_sd([r['mae'] for r in runs], 1)} "
            f"| {mean_sd([r['mase'] for r in runs])} "
            f"| {mean_sd([r['ratio_day'] for r in runs])} | {mean_sd([r['ratio_week'] for r in runs])} "
            f"| {mean_sd([r['ratio_best'] for r in runs])} | {together} "
            f"| {coverage} |"
        )
    lines += ["", "Baselines on the backtest steps:", ""]
    for series in {s.key: s for s, _, _ in results}.values():
        run = next(r["runs"][0] for s, _, r in results if s is series)
        lines.append(
            f"- {series.name}: {run['steps']} forecast steps; MAE of the seasonal naive 1 day {run['naive_day']:.1f}, "
            f"1 week {run['naive_week']:.1f} (MASE {run['naive_day'] / run['scale']:.3f} / "
            f"{run['naive_week'] / run['scale']:.3f})."
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> list[tuple[Series, str, dict]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one seed, one epoch of 10 batches; writes no file unless --output / --figure are given",
    )
    parser.add_argument(
        "--peer",
        choices=["neuralforecast", "none"],
        default=None,
        help="the peer LSTM (default: neuralforecast, none with --quick)",
    )
    parser.add_argument("--series", default=",".join(s.key for s in SERIES), help="comma-separated series keys")
    parser.add_argument(
        "--arms",
        default=None,
        help=f"comma-separated arm indices (0-{PEER}, {PEER}: the peer; with --panel 0: no embedding, 1: with); "
        "default all",
    )
    parser.add_argument(
        "--extra", default="", help="more fit arguments for every arm, e.g. --extra=--model.calibration=pooled (trials)"
    )
    parser.add_argument(
        "--panel", action="store_true", help="the panel (115 hourly series) with and without model.series_embedding"
    )
    parser.add_argument(
        "--flush-denormal",
        action="store_true",
        help="torch.set_flush_denormal(True) first: float32 values below 1.2e-38 become 0 (CPU; the panel's steps ran "
        "3x faster with it, see README 'Panel')",
    )
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--figure", type=Path, default=None)
    args = parser.parse_args(argv)
    sys.argv = sys.argv[:1]  # the CLI calls get their arguments from this script, not from its command line
    peer = args.peer or ("none" if args.quick else "neuralforecast")
    output, figure = (args.output, args.figure) if args.quick else (args.output or OUTPUT, args.figure or FIGURE)
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    logging.getLogger("lightning").setLevel(logging.ERROR)
    torch.set_flush_denormal(args.flush_denormal)
    if args.panel:
        output = args.output if args.quick else args.output or PANEL_OUTPUT
        with tempfile.TemporaryDirectory(prefix="forecast-panel-") as root:
            arms = range(len(PANEL_ARMS)) if args.arms is None else [int(a) for a in args.arms.split(",")]
            print(run_panel(seeds, Path(root), args.quick, args.extra.split(), output, args.flush_denormal, arms))
        return []
    python = ensure_venv() if peer != "none" else None  # before any fit: a broken peer install fails at once
    chosen = [s for s in SERIES if s.key in args.series.split(",")]
    started, done, planned = time.time(), {}, jobs(chosen, python is not None)
    if args.arms is not None:  # a subset while developing; the peer needs the recipe's runs (arm 0)
        keep = {int(a) for a in args.arms.split(",")}
        planned = [(s, i) for s, i in planned if i in keep]
    with tempfile.TemporaryDirectory(prefix="forecast-quality-") as root:
        for series, index in planned:
            if index == PEER:
                result = run_peers(series, done[(series.key, 0)], python, Path(root))
            else:
                result = run_arm(series, index, seeds, Path(root), args.quick, args.extra.split())
            done[(series.key, index)] = result
            print(f"{series.key} | {LABELS[index]}: {summary(result)}", flush=True)
            if figure is not None and series is SERIES[0] and index == FIGURE_ARM:
                plot_week(result["runs"][0]["table"], series.target, series.name, figure)
            results = [(s, LABELS[i], done[(s.key, i)]) for s in chosen for i in range(PEER + 1) if (s.key, i) in done]
            text = markdown(results, seeds, (time.time() - started) / 60, len(planned))
            if output is not None:  # after every job: an interrupted run keeps the rows it finished
                output.write_text(text)
    print(text)
    return results


def jobs(chosen: list[Series], peer: bool) -> list[tuple[Series, int]]:
    """(series, arm index or PEER) in the order they run: the recipe, the quantile arm and the peer of every series
    first, then the ablations."""
    first = [(s, i) for s in chosen for i in (0, QUANTILE_ARM, *([PEER] if peer else []))]
    return first + [(s, i) for s in chosen for i in range(1, PEER) if i != QUANTILE_ARM]


def summary(result: dict) -> str:
    runs = result["runs"]
    keys = ("mae", "ratio_best", "mase", "coverage_80", "coverage_80_uncalibrated", "widening")
    return ", ".join(f"{key} {statistics.mean(r[key] for r in runs):.3f}" for key in keys if key in runs[0])


if __name__ == "__main__":
    main()
    sys.exit(0)

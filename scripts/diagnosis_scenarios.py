"""The scenarios of scripts/benchmark_diagnosis.py: real series, each with one injected, known cause (or none).

Series: the bundled weekly Mauna Loa CO2 series (lightning_lstm/data/bundled) and the 5-minute CGM glucose excerpt
(tests/fixtures/cgm_glucose_excerpt.csv, with its source in tests/fixtures/README.md). Values are injected into a
copy of the series at known rows of the training span, away from its long gaps (rows 304-321 and 1357-1360 of the
CO2 series: windows touching them are skipped); config causes are overlays on a tiny model (16 units, one layer),
so one doctor run takes seconds.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
CO2 = REPO / "lightning_lstm" / "data" / "bundled" / "co2_weekly_maunaloa.csv"
GLUCOSE = REPO / "tests" / "fixtures" / "cgm_glucose_excerpt.csv"
TINY = ["--model.hidden_size=16", "--model.num_layers=1"]
BASES = {
    "co2": ["--config", str(REPO / "configs" / "default.yaml"), *TINY],
    "glucose": [
        "--config",
        str(REPO / "configs" / "glucose.yaml"),
        f"--data.path={GLUCOSE}",
        *TINY,
        "--model.dropout=0",
        "--data.batch_size=64",
    ],
}
LAST_BATCH_OF_1 = "the largest batch size up to 256 that leaves a last batch of 1"
SGD = {"class_path": "torch.optim.SGD", "init_args": {"lr": 2.0, "momentum": 0.9}}


@dataclass
class Scenario:
    """One benchmark case.

    Attributes:
        name: the case's name.
        series: ``co2`` or ``glucose`` (the base config).
        cause: the cause the doctor should name first (a :class:`~lightning_lstm.spikes.records.Finding` cause), or
            ``None`` for a healthy control, where it must give no advice.
        overlay: config keys the case changes.
        inject: changes the series (a DataFrame) in place and returns the rows it made wrong, or ``None``.
        what: the injected cause in words.
        half: ``tuning`` (rules may be changed while looking at it) or ``held_out`` (only measured); the CO2 and
            glucose scenarios were written with the rules, so they are tuning, and so is the first held-out half
            since it was read, and so is v2 (scripts/diagnosis_held_out_scenarios.py is the held-out half now, v3).
        known_errors: timestamps of real (not injected) errors in the series as shipped: naming one is correct
            (precision), missing one is not counted (recall counts injected values only).
    """

    name: str
    series: str
    cause: str | None
    what: str
    overlay: dict[str, Any] = field(default_factory=dict)
    inject: Callable[[pd.DataFrame], list[int]] | None = None
    half: str = "tuning"
    known_errors: tuple[str, ...] = ()


def _set(rows: list[int], value: float | None = None, factor: float | None = None, column: str = "co2"):
    def inject(frame: pd.DataFrame) -> list[int]:
        for row in rows:
            frame.loc[row, column] = value if value is not None else frame.loc[row, column] * factor
        return rows

    return inject


def _shift(row: int, by: float):
    def inject(frame: pd.DataFrame) -> list[int]:
        frame.loc[row:, "co2"] += by
        return [row]

    return inject


SCENARIOS = [
    Scenario(
        "co2_near_zero_drops", "co2", "bad_values", "3 readings set to 0.4 ppm", inject=_set([500, 900, 1100], 0.4)
    ),
    Scenario("co2_large_spikes", "co2", "bad_values", "3 readings x3", inject=_set([600, 1000, 1200], factor=3.0)),
    Scenario(
        "co2_drops_unshuffled",
        "co2",
        "bad_values",
        "3 readings set to 0.4 ppm, batches unshuffled",
        {"data.shuffle": False},
        _set([550, 950, 1150], 0.4),
    ),
    Scenario("co2_level_shift", "co2", "level_shift", "+25 ppm from 1979-04-28 on", inject=_shift(1100, 25.0)),
    Scenario(
        "glucose_ramps_unshuffled",
        "glucose",
        "order",
        "meal ramps in time order (shuffle off, batch 16)",
        {"data.shuffle": False, "data.batch_size": 16},
    ),
    Scenario(
        "co2_seasons_unshuffled",
        "co2",
        "order",
        "seasons in time order (shuffle off, batch 16, no window_norm)",
        {"data.shuffle": False, "data.batch_size": 16, "data.window_norm": "none"},
    ),
    Scenario(
        "co2_last_batch_of_1",
        "co2",
        "last_batch",
        "a batch size near 256 that leaves a last batch of 1",
        {"data.batch_size": LAST_BATCH_OF_1},
    ),
    Scenario(
        "glucose_last_batch_of_1",
        "glucose",
        "last_batch",
        "a batch size near 256 that leaves a last batch of 1, 50 epochs, mse loss (huber bounds a 1-window batch)",
        {"data.lookback": 37, "data.batch_size": LAST_BATCH_OF_1, "model.loss": "mse", "trainer.max_epochs": 50},
    ),
    Scenario(
        "co2_high_lr",
        "co2",
        "learning_rate",
        "SGD lr 2.0 (momentum 0.9), no window_norm",
        {"model.optimizer": SGD, "data.window_norm": "none"},
    ),
    Scenario(
        "co2_no_clip_long_lookback",
        "co2",
        "gradients",
        "SGD lr 2.0, lookback 260, no gradient clipping",
        {"model.optimizer": SGD, "data.window_norm": "none", "data.lookback": 260, "trainer.gradient_clip_val": None},
    ),
    Scenario(
        "co2_unscaled",
        "co2",
        "unscaled",
        "data.scaler: none, window_norm: none",
        {"data.scaler": "none", "data.window_norm": "none"},
    ),
    Scenario(
        "glucose_unscaled",
        "glucose",
        "unscaled",
        "data.scaler: none, window_norm: none",
        {"data.scaler": "none", "data.window_norm": "none"},
    ),
    Scenario(
        "co2_sentinel_nonfinite",
        "co2",
        "nonfinite",
        "2 readings of 1e30 (unscaled): the loss overflows",
        {"data.scaler": "none", "data.window_norm": "none"},
        _set([700, 1250], 1e30),
    ),
    Scenario("co2_healthy", "co2", None, "none (configs/default.yaml, tiny model)"),
    Scenario("glucose_healthy", "glucose", None, "none (configs/glucose.yaml, tiny model)"),
    Scenario("co2_healthy_unshuffled", "co2", None, "none; shuffle off with window_norm last", {"data.shuffle": False}),
]
QUICK = ["co2_near_zero_drops", "co2_healthy", "elnino_sentinels", "pv50_healthy"]  # both halves
SOURCES = {"co2": CO2, "glucose": GLUCOSE}
"""Series name -> its CSV (scripts/diagnosis_real_scenarios.py has the real series' own)."""


def base_config(args: list[str]) -> dict:
    """The resolved fit config of a base's CLI arguments (``BASES[series]``), as the CLI parses them."""
    from lightning_lstm.cli import build_cli

    argv, sys.argv = sys.argv, sys.argv[:1]  # the CLI reads sys.argv too: keep this script's flags away from it
    try:
        cli = build_cli(args, run=False)
    finally:
        sys.argv = argv
    return yaml.safe_load(cli.parser.dump(cli.config))


def batch_of_one(config: dict, overlay: dict) -> int:
    """The largest batch size up to 256 whose training windows leave a last batch of exactly one window."""
    from lightning_lstm.data.datamodule import TimeSeriesDataModule

    data = {**config["data"], **{k.split(".", 1)[1]: v for k, v in overlay.items() if k.startswith("data.")}}
    module = TimeSeriesDataModule(**{**data, "batch_size": 1})
    module.setup("fit")
    windows = len(module.window_index("train"))
    return next(size for size in range(256, 1, -1) if windows % size == 1)


def build(scenario: Scenario, base: dict, folder: Path, source: Path) -> tuple[dict, list[str]]:
    """The scenario's overlay (with its data file, ``source`` changed, written into ``folder``) and the timestamps
    it made wrong."""
    overlay = dict(scenario.overlay)
    truth: list[str] = []
    if scenario.inject is not None:
        frame = pd.read_csv(source)
        rows = scenario.inject(frame)
        time_column = base["data"]["time_column"]
        truth = [str(pd.Timestamp(frame.loc[r, time_column])).removesuffix(" 00:00:00") for r in rows]
        path = folder / f"{scenario.name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)
        overlay["data.path"] = str(path)
    if overlay.get("data.batch_size") == LAST_BATCH_OF_1:
        overlay["data.batch_size"] = batch_of_one(base, {k: v for k, v in overlay.items() if k != "data.batch_size"})
    return overlay, truth

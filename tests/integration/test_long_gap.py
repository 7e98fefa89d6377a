"""A 300-day outage in an hourly file resampled with ``data.frequency``: no window is invented across it, the fit log
counts what was filled and skipped per split, and the test scores and backtest truth use observed targets only.

The file: hourly readings a few minutes past the hour, 40 days, then nothing for 300 days, then 60 days, with a few
hours missing: 2 and 1 (training), 3 (validation), 2 and 5 (test). Resampled with ``data.frequency: h`` the outage
becomes 7,200 empty hours; with ``data.missing: interpolate`` and the default ``data.max_gap`` (3) the short runs are
filled and the 7,200- and 5-hour runs stay missing. Every expected count below is computed here by brute force over
the hourly grid, independently of the package's window index.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import pytest
import torch

from lightning_lstm.callbacks import ForecastWriter
from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.model.module import LSTMForecaster

pytestmark = pytest.mark.usefixtures("one_thread")

START = pd.Timestamp("2021-01-01")
BEFORE, OUTAGE, AFTER = 40 * 24, 300 * 24, 60 * 24  # hours
LOOKBACK, HORIZON = 24, 6
WIDTH = LOOKBACK + HORIZON
N = BEFORE + OUTAGE + AFTER  # rows of the hourly grid
VAL_ROW, TEST_ROW = BEFORE + OUTAGE + 20 * 24, BEFORE + OUTAGE + 40 * 24
SHORT = {"train": [[100, 101], [BEFORE + OUTAGE + 50]], "val": [[VAL_ROW + 30, VAL_ROW + 31, VAL_ROW + 32]]}
SHORT["test"] = [[TEST_ROW + 40, TEST_ROW + 41]]
LONG = [list(range(BEFORE, BEFORE + OUTAGE)), list(range(TEST_ROW + 200, TEST_ROW + 205))]


def hourly_csv(path: Path) -> Path:
    empty = {row for runs in SHORT.values() for run in runs for row in run} | {row for run in LONG for row in run}
    hours = np.array([h for h in range(N) if h not in empty])
    rng = np.random.default_rng(0)
    minutes = rng.integers(1, 59, hours.size)  # readings off the grid: resampling puts each in its hour
    value = 10 + 3 * np.sin(2 * np.pi * hours / 24) + 0.002 * hours + 0.1 * rng.standard_normal(hours.size)
    times = START + pd.to_timedelta(hours, unit="h") + pd.to_timedelta(minutes, unit="min")
    pd.DataFrame({"time": times.strftime("%Y-%m-%d %H:%M:%S"), "load": value}).to_csv(path, index=False)
    return path


def data_module(path: Path, **options) -> TimeSeriesDataModule:
    return TimeSeriesDataModule(
        path=str(path),
        time_column="time",
        target_columns=["load"],
        frequency="h",
        lookback=LOOKBACK,
        horizon=HORIZON,
        val_start=str(START + pd.Timedelta(hours=VAL_ROW)),
        test_start=str(START + pd.Timedelta(hours=TEST_ROW)),
        window_norm="none",
        batch_size=64,
        shuffle=False,
        **options,
    )


def brute_force_windows(lo: int, hi: int, avoid: set[int]) -> tuple[int, int]:
    """(windows kept, all windows) whose targets lie in ``[lo, hi)``, kept if no row is in ``avoid``."""
    starts = range(max(0, lo - LOOKBACK), hi - WIDTH + 1)
    kept = sum(1 for s in starts if avoid.isdisjoint(range(s, s + WIDTH)))
    return kept, len(starts)


@pytest.fixture(scope="module")
def hourly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hourly_csv(tmp_path_factory.mktemp("long_gap") / "hourly.csv")


def test_no_window_spans_the_outage_and_the_log_counts_fills_and_skips(hourly: Path, caplog) -> None:
    dm = data_module(hourly)
    with caplog.at_level(logging.INFO):
        dm.setup("fit")
    assert dm.frame.values.shape == (N, 1) and dm.frame.time_step == 3600 * 10**9
    long_rows = {row for run in LONG for row in run}
    spans = {"train": (0, VAL_ROW), "val": (VAL_ROW, TEST_ROW), "test": (TEST_ROW, N)}
    counts = {split: brute_force_windows(lo, hi, long_rows) for split, (lo, hi) in spans.items()}
    for split, (kept, total) in counts.items():
        index = dm.window_index(split)
        starts, _ = index.starts(np.arange(len(index)))
        assert len(starts) == kept and len(dm.window_index(split, skip_missing=False)) == total
        assert all(long_rows.isdisjoint(range(s, s + WIDTH)) for s in starts.tolist())  # no invented window
    assert counts["train"] == (BEFORE - WIDTH + 1 + 20 * 24 - WIDTH + 1, 20 * 24 + BEFORE + OUTAGE - WIDTH + 1)
    skipped = {split: total - kept for split, (kept, total) in counts.items()}
    assert skipped["train"] == OUTAGE + WIDTH - 1  # 7,229 training windows would have been invented
    text = caplog.text
    assert (
        f"train: 3 filled (longest run 2 steps), 7200 left missing (longest run 7200 steps), {skipped['train']} of "
        f"{counts['train'][1]} windows skipped for gaps" in text
    )
    assert f"val: 3 filled (longest run 3 steps), 0 left missing, 0 of {counts['val'][1]} windows skipped" in text
    assert f"test: 2 filled (longest run 2 steps), 5 left missing (longest run 5 steps), {skipped['test']} of" in text
    assert "Filled target values, left out of the loss and scores: train 3, val 3, test 2" in text
    batch = dm.dataset("train").__getitems__(list(range(len(dm.window_index("train")))))
    assert torch.isfinite(batch["x"]).all() and torch.isfinite(batch["y"]).all()


def test_scores_and_backtest_truth_use_observed_targets_only(hourly: Path, tmp_path: Path) -> None:
    pl.seed_everything(0, verbose=False)
    dm = data_module(hourly)
    model = LSTMForecaster(input_size=1, num_targets=1, horizon=HORIZON, hidden_size=4, num_layers=1)
    options = dict(logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    trainer = pl.Trainer(max_epochs=1, limit_train_batches=5, limit_val_batches=2, **options)
    trainer.fit(model, datamodule=dm)
    scores = trainer.test(model, datamodule=dm, verbose=False)[0]

    filled = {row for run in SHORT["test"] for row in run}
    dataset = dm.dataset("test")
    batch = dataset.__getitems__(list(range(len(dataset))))
    with torch.no_grad():
        forecast = model.to_original_scale(model(batch["x"]), batch)[:, :, 0].numpy()  # (B, H)
    truth = batch["y_raw"][:, :, 0].numpy()
    rows = batch["window_id"].numpy()[:, None] + LOOKBACK + np.arange(HORIZON)  # (B, H) target rows
    observed = ~np.isin(rows, list(filled))
    assert (~observed).sum() == 2 * HORIZON  # each filled hour is a target of H windows
    error = np.abs(forecast - truth)
    assert scores["test/mae"] == pytest.approx(error[observed].mean(), rel=1e-5)
    assert abs(error[observed].mean() - error.mean()) > 1e-5 * error.mean()  # the filled ones would change it
    assert scores["test/mae_step_1"] == pytest.approx(error[:, 0][observed[:, 0]].mean(), rel=1e-5)

    dm_backtest = data_module(hourly, predict_mode="backtest", predict_split="test")
    dm_backtest.load_state_dict(dm.state_dict())
    writer = ForecastWriter(str(tmp_path / "backtest.csv"))
    predictor = pl.Trainer(callbacks=[writer], **options)
    predictor.predict(model, datamodule=dm_backtest, return_predictions=False)
    table = pd.read_csv(tmp_path / "backtest.csv")
    empty = table["load_true"].isna()
    assert empty.sum() == 2 * HORIZON and len(table) == len(dataset) * HORIZON
    filled_times = {str(START + pd.Timedelta(hours=row)) for row in filled}
    assert set(table.loc[empty, "timestamp"]) == filled_times
    scored = table[~empty]
    assert (scored["load"] - scored["load_true"]).abs().mean() == pytest.approx(scores["test/mae"], rel=1e-4)

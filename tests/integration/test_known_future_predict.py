"""Known-future inputs through the CLI: fit two seeds, forecast from a predict file's future rows, average the
checkpoints, backtest with a stride, and refuse what cannot work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lightning_lstm.cli import build_cli
from tests.helpers import REPO

LOOKBACK, HORIZON, ROWS = 24, 6, 300
KNOWN = ["--data.known_future_columns=[event]", "--data.calendar=[hour_of_day]"]

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def write_load(path: Path, future: int = 0) -> Path:
    """Hourly ``load`` driven by a daily cycle and a planned ``event``; the last ``future`` rows have no load yet."""
    t = np.arange(ROWS + future)
    event = (t % 29 < 4).astype(float)
    load = 50 + 5 * np.sin(2 * np.pi * t / 24) + 8 * event + 0.3 * np.random.default_rng(0).standard_normal(len(t))
    table = pd.DataFrame({"date": pd.date_range("2024-03-01", periods=len(t), freq="h"), "load": load, "event": event})
    table.loc[ROWS:, "load"] = np.nan
    table.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two seeds of a short fit with known-future inputs; a predict file with the next day's future rows."""
    root = tmp_path_factory.mktemp("known_future")
    csv = write_load(root / "train.csv")
    runs = {}
    for seed in (0, 1):
        build_cli(
            [
                "fit",
                "--config",
                str(REPO / "configs" / "default.yaml"),
                f"--seed_everything={seed}",
                f"--trainer.logger.init_args.save_dir={root}",
                f"--trainer.logger.init_args.name=seed{seed}",
                "--trainer.max_epochs=1",
                "--trainer.limit_train_batches=4",
                "--trainer.enable_progress_bar=false",
                "--trainer.enable_model_summary=false",
                "--model.hidden_size=4",
                "--model.num_layers=1",
                f"--data.path={csv}",
                "--data.target_columns=[load]",
                f"--data.lookback={LOOKBACK}",
                f"--data.horizon={HORIZON}",
                "--data.window_norm=none",
                "--forecast_plot.every_n_epochs=0",
                *KNOWN,
            ]
        )
        runs[seed] = root / f"seed{seed}" / "version_0"
    return {
        "config": runs[0] / "config.yaml",
        "a": runs[0] / "checkpoints" / "last.ckpt",
        "b": runs[1] / "checkpoints" / "last.ckpt",
        "predict": write_load(root / "predict.csv", future=HORIZON),
    }


def predict(fitted: dict[str, Path], output: Path, *extra: str, ckpt: str = "a", path: str = "predict") -> pd.DataFrame:
    build_cli(
        [
            "predict",
            "--config",
            str(fitted["config"]),
            f"--ckpt_path={fitted[ckpt]}",
            f"--data.path={fitted[path]}",
            f"--predictions.output_path={output}",
            *extra,
        ]
    )
    return pd.read_csv(output, parse_dates=["forecast_origin", "timestamp"])


def test_the_model_input_size_is_linked_from_the_data_config(fitted) -> None:
    checkpoint = torch.load(fitted["a"], map_location="cpu", weights_only=True)
    assert checkpoint["hyper_parameters"]["future_size"] == 3  # one column, one sin/cos pair
    assert checkpoint["TimeSeriesDataModule"]["known_future_columns"] == ["event"]
    assert checkpoint["state_dict"]["net.lstm.weight_ih_l0"].shape[1] == 1 + 3


def test_forecast_reads_the_future_rows_of_the_predict_file(fitted, tmp_path: Path) -> None:
    table = predict(fitted, tmp_path / "forecast.csv")
    future = pd.read_csv(fitted["predict"], parse_dates=["date"]).iloc[ROWS:]
    assert table["timestamp"].tolist() == future["date"].tolist()
    assert (table["forecast_origin"] == future["date"].iloc[0] - pd.Timedelta(hours=1)).all()
    assert np.isfinite(table["load"]).all()


def test_forecast_without_future_rows_is_a_clear_error(fitted, tmp_path: Path) -> None:
    fitted = {**fitted, "plain": write_load(tmp_path / "plain.csv")}
    with pytest.raises(ValueError, match=r"need one future row per forecast step .* found 0 such rows"):
        predict(fitted, tmp_path / "forecast.csv", path="plain")


def test_ensemble_writes_the_mean_of_the_checkpoints(fitted, tmp_path: Path) -> None:
    a = predict(fitted, tmp_path / "a.csv")
    b = predict(fitted, tmp_path / "b.csv", ckpt="b")
    both = predict(fitted, tmp_path / "ab.csv", f"--predictions.ensemble=[{fitted['b']}]")
    np.testing.assert_allclose(both["load"], (a["load"] + b["load"]) / 2, rtol=1e-5)
    assert not np.allclose(a["load"], b["load"])  # two seeds: the mean is not either one


def test_backtest_stride_forecasts_every_horizon_once(fitted, tmp_path: Path) -> None:
    args = ("--data.predict_mode=backtest", f"--data.backtest_stride={HORIZON}")
    table = predict(fitted, tmp_path / "backtest.csv", *args)
    origins = table["forecast_origin"].drop_duplicates()
    assert (origins.diff().dropna() == pd.Timedelta(hours=HORIZON)).all()
    assert table["timestamp"].is_unique  # each test step forecast once
    assert len(table) == HORIZON * len(origins)


def test_a_config_without_the_known_future_inputs_is_refused(fitted, tmp_path: Path) -> None:
    fitted = {**fitted, "plain": write_load(tmp_path / "plain.csv")}
    with pytest.raises(ValueError, match="trained with 3 known-future inputs per step"):
        predict(fitted, tmp_path / "out.csv", "--data.known_future_columns=[]", "--data.calendar=[]", path="plain")

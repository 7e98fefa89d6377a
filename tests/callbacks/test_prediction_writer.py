"""``predict`` from a checkpoint: original-scale forecasts with timestamps, here, in a new process, on a new file."""

from __future__ import annotations

import errno
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lightning_lstm.callbacks import ForecastWriter
from lightning_lstm.callbacks.prediction_writer import write_table
from lightning_lstm.checkpoint_io import CheckpointWriteError
from lightning_lstm.cli import build_cli
from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.model.module import LSTMForecaster
from tests.helpers import REPO, tmpfs, write_weekly_sine

LOOKBACK, HORIZON = 14, 3


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def write_series(path: Path, shift: float = 0.0, gain: float = 1.0) -> Path:
    return write_weekly_sine(path, steps=300, start="2021-03-01", noise=0.2, shift=shift, gain=gain)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 2-epoch fit on a daily series; predict runs reuse its saved config.yaml and last.ckpt."""
    root = tmp_path_factory.mktemp("predict")
    csv = write_series(root / "train.csv")
    build_cli(
        [
            "fit",
            "--config",
            str(REPO / "configs" / "default.yaml"),
            f"--trainer.logger.init_args.save_dir={root}",
            "--trainer.max_epochs=2",
            "--trainer.limit_train_batches=4",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
            "--model.hidden_size=4",
            "--model.num_layers=1",
            f"--data.path={csv}",
            "--data.target_columns=[value]",
            f"--data.lookback={LOOKBACK}",
            f"--data.horizon={HORIZON}",
            "--data.window_norm=none",
            "--data.batch_size=32",
            "--forecast_plot.every_n_epochs=0",
        ]
    )
    run = root / "default" / "version_0"
    return {"root": root, "csv": csv, "config": run / "config.yaml", "ckpt": run / "checkpoints" / "last.ckpt"}


def predict_args(fitted: dict[str, Path], output: Path, *extra: str) -> list[str]:
    return [
        "predict",
        "--config",
        str(fitted["config"]),
        f"--ckpt_path={fitted['ckpt']}",
        f"--predictions.output_path={output}",
        *extra,
    ]


def test_forecast_mode_writes_the_next_horizon_steps_with_future_timestamps(fitted, tmp_path: Path):
    build_cli(predict_args(fitted, tmp_path / "forecast.csv"))
    table = pd.read_csv(tmp_path / "forecast.csv", parse_dates=["forecast_origin", "timestamp"])
    last = pd.read_csv(fitted["csv"], parse_dates=["date"])["date"].iloc[-1]
    assert list(table.columns) == ["window_id", "series", "forecast_origin", "timestamp", "step", "value"]
    assert table["step"].tolist() == list(range(1, HORIZON + 1))
    assert (table["forecast_origin"] == last).all()
    assert table["timestamp"].tolist() == [last + pd.Timedelta(days=k) for k in range(1, HORIZON + 1)]
    assert table["value"].between(5, 15).all()  # original scale (the series spans 7..13), not scaled units


def read_table(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, parse_dates=["forecast_origin", "timestamp"])


@pytest.fixture(scope="module")
def backtest(fitted) -> Path:
    """Every test window scored in this process, to Parquet when pyarrow is installed, else to CSV."""
    suffix = ".parquet" if importlib.util.find_spec("pyarrow") else ".csv"
    out = fitted["root"] / f"backtest{suffix}"
    build_cli(predict_args(fitted, out, "--data.predict_mode=backtest"))
    return out


def test_backtest_round_trips_timestamps_with_the_truth_beside_each_forecast(fitted, backtest: Path):
    table = read_table(backtest)
    assert pd.api.types.is_datetime64_any_dtype(table["timestamp"])  # typed in Parquet, ISO text in CSV
    source = pd.read_csv(fitted["csv"], parse_dates=["date"]).set_index("date")["value"]
    assert np.allclose(table["value_true"], source.loc[table["timestamp"]].to_numpy(), rtol=1e-6)
    assert ((table["timestamp"] - table["forecast_origin"]) == pd.to_timedelta(table["step"], unit="D")).all()
    assert table["timestamp"].min() >= source.index[255]  # the last 15 % of 300 days: test windows only
    assert len(table) == HORIZON * (45 - HORIZON + 1)
    assert np.abs(table["value"] - table["value_true"]).mean() < 3  # a real forecast on the original scale


def test_predict_in_a_new_process_gives_the_same_numbers(fitted, backtest: Path, tmp_path: Path):
    there = tmp_path / f"there{backtest.suffix}"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lightning_lstm",
            *predict_args(fitted, there),
            "--data.predict_mode=backtest",
            "--trainer.enable_progress_bar=false",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    here = read_table(backtest)
    assert len(here) > 100
    pd.testing.assert_frame_equal(here, read_table(there), check_exact=True)


def forecast_by_hand(ckpt: Path, csv: Path, center: float, scale: float) -> np.ndarray:
    """The model on the last ``LOOKBACK`` values of ``csv`` scaled with ``center`` and ``scale``: ``(H,)``."""
    model = LSTMForecaster.load_from_checkpoint(ckpt, map_location="cpu").eval()
    values = pd.read_csv(csv)["value"].to_numpy()[-LOOKBACK:]
    x = torch.tensor((values - center) / scale, dtype=torch.float32).view(1, LOOKBACK, 1)  # (1, L, F)
    with torch.no_grad():
        return model(x).view(-1).numpy() * scale + center


def test_predict_on_a_new_file_uses_the_statistics_stored_in_the_checkpoint(fitted, tmp_path: Path):
    new_csv = write_series(tmp_path / "new.csv", shift=4.0, gain=1.5)  # same columns, other values
    build_cli(predict_args(fitted, tmp_path / "new_forecast.csv", f"--data.path={new_csv}"))
    table = pd.read_csv(tmp_path / "new_forecast.csv")

    stats = torch.load(fitted["ckpt"], weights_only=True)["TimeSeriesDataModule"]["statistics"]
    center, scale = float(stats["center"][0, 0]), float(stats["scale"][0, 0])
    train = pd.read_csv(fitted["csv"])["value"].to_numpy()[:210]  # the training span: the first 70 %
    assert (center, scale) == pytest.approx((train.mean(), train.std()), rel=1e-5)
    stored = forecast_by_hand(fitted["ckpt"], new_csv, center, scale)
    new = pd.read_csv(new_csv)["value"].to_numpy()[:210]
    refitted = forecast_by_hand(fitted["ckpt"], new_csv, new.mean(), new.std())
    np.testing.assert_allclose(table["value"], stored, rtol=1e-5)
    assert not np.allclose(table["value"], refitted, rtol=1e-2)


def test_an_existing_output_is_kept_unless_overwrite_is_set(fitted, tmp_path: Path):
    out = tmp_path / "kept.csv"
    out.write_text("do not lose me\n")
    with pytest.raises(ValueError, match="exists; set predictions.overwrite"):
        build_cli(predict_args(fitted, out))
    assert out.read_text() == "do not lose me\n"
    build_cli(predict_args(fitted, out, "--predictions.overwrite=true"))
    assert pd.read_csv(out)["step"].tolist() == list(range(1, HORIZON + 1))


def test_output_path_must_be_csv_or_parquet():
    with pytest.raises(ValueError, match="predictions.output_path"):
        ForecastWriter("forecast.xlsx")


SUFFIXES = [
    ".csv",
    pytest.param(
        ".parquet",
        marks=pytest.mark.skipif(not importlib.util.find_spec("pyarrow"), reason="parquet needs pyarrow"),
    ),
]


def read_back(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_full_disk_leaves_the_old_predictions_or_none_never_part_of_a_file(tmp_path: Path, suffix: str):
    rng = np.random.default_rng(0)
    small = pd.DataFrame({"window_id": np.arange(3), "value": [1.5, 2.5, 3.5]})
    big = pd.DataFrame({"window_id": np.arange(100_000), "value": rng.normal(size=100_000)})  # > 1 MB either way
    with tmpfs(tmp_path / "disk", size="256k") as disk:
        old, new = disk / f"old{suffix}", disk / f"new{suffix}"
        write_table(small, old)
        before, free = old.read_bytes(), os.statvfs(disk).f_bfree
        for path, kept in ((old, f"{old} is unchanged"), (new, f"{new} was not created")):
            with pytest.raises(CheckpointWriteError) as raised:
                write_table(big, path)  # ENOSPC, for real, partway through the file
            message = str(raised.value)
            assert raised.value.errno == errno.ENOSPC
            for words in (str(path), "the disk is full", "predictions.output_path", kept):
                assert words in message, (words, message)
            assert os.listdir(disk) == [old.name]  # no partial file, no temporary beside it
        assert old.read_bytes() == before
        pd.testing.assert_frame_equal(read_back(old), small)
        assert os.statvfs(disk).f_bfree == free  # the partial temporary files gave their space back


def test_predict_onto_a_full_disk_fails_naming_the_file_and_the_key_and_writes_nothing(fitted, tmp_path: Path):
    with tmpfs(tmp_path / "disk", size="16k") as disk:
        (disk / "filler").write_bytes(b"\0" * 16 * 1024)  # the disk is full; the folder is still writable
        out = disk / "forecast.csv"
        with pytest.raises(CheckpointWriteError) as raised:
            build_cli(predict_args(fitted, out))
        assert raised.value.errno == errno.ENOSPC
        for words in (str(out), "the disk is full", "predictions.output_path"):
            assert words in str(raised.value), (words, str(raised.value))
        assert os.listdir(disk) == ["filler"]


def test_quantile_outputs_become_one_column_per_level_beside_each_target() -> None:
    table = pd.DataFrame({"t": np.arange(60), "a": np.arange(60.0), "b": -np.arange(60.0)})
    data = TimeSeriesDataModule(dataframe=table, time_column="t", target_columns=["a", "b"], lookback=4, horizon=2)
    data.setup("fit")
    ids = torch.tensor([10, 20])
    point = torch.arange(8.0).view(2, 2, 2)  # (B, H, T)
    outputs = {"window_id": ids, "forecast": point, "forecast_q10": point - 1, "forecast_q90": point + 1}
    written = ForecastWriter.build_table(data, {k: v.numpy() for k, v in outputs.items()})
    assert list(written.columns)[5:] == ["a", "a_q10", "a_q90", "b", "b_q10", "b_q90"]
    assert written["b_q90"].tolist() == (point[:, :, 1] + 1).flatten().tolist()

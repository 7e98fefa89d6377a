"""A checkpoint the CLI wrote, reloaded from Python to forecast a new DataFrame with the training statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lightning_lstm.api import forecast, load_forecaster, predict
from lightning_lstm.cli.app import main
from tests.helpers import tiny_fit_args


def test_a_cli_checkpoint_forecasts_a_dataframe_as_cli_predict_does(tmp_path: Path, sine_csv: Path, one_thread):
    data_args = [f"--data.path={sine_csv}", "--data.target_columns=[value]", "--data.lookback=16", "--data.horizon=3"]
    main(["fit", *tiny_fit_args(tmp_path, *data_args)])
    (checkpoint,) = tmp_path.glob("default/version_0/checkpoints/last.ckpt")

    new = pd.read_csv(sine_csv).iloc[100:160]  # a new stretch of the series, as a DataFrame
    new.to_csv(tmp_path / "new.csv", index=False)
    model, data = load_forecaster(checkpoint, new)
    assert data.source is new and data.hparams.path is None and data.hparams.lookback == 16
    table = predict(model, data)
    assert table["timestamp"].tolist() == list(pd.date_range(new["date"].iloc[-1], periods=4, freq="D")[1:])

    main(["predict", *tiny_fit_args(tmp_path, *data_args[1:], f"--data.path={tmp_path / 'new.csv'}"),
          f"--ckpt_path={checkpoint}", f"--predictions.output_path={tmp_path / 'cli.csv'}"])  # fmt: skip
    cli = pd.read_csv(tmp_path / "cli.csv")
    np.testing.assert_allclose(table["value"], cli["value"], rtol=1e-5)  # the training statistics, both ways

    backtest = forecast(checkpoint, new, mode="backtest", predict_split="all")
    assert len(backtest) == 3 * (60 - 16 - 3 + 1)  # every window of the 60 rows, 3 steps each
    truth = new.set_index(pd.to_datetime(new["date"]))["value"]
    np.testing.assert_allclose(backtest["value_true"], truth.loc[backtest["timestamp"]].to_numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="lookback"):
        forecast(checkpoint, new.head(5))  # fewer rows than the lookback: the data module says so

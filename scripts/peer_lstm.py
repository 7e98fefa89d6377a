"""The peer LSTM of scripts/benchmark_forecast.py: neuralforecast's ``LSTM``, run in its own virtualenv.

Not importable from the project's venv (neuralforecast is never a dependency of the package): the benchmark runs
``<peer venv>/bin/python scripts/peer_lstm.py --spec spec.json`` (:mod:`scripts.forecast_peer` builds the venv). The
spec names the series CSV (``ds``, ``y``: the resampled series the benchmark's model saw, original scale), the
horizon, lookback, the rows of the training and validation spans, the test steps, the origins' stride, the seed, the
optimizer steps and the batch size. One model is trained on the training span (validation rows held out as ours
are) and forecasts every origin of the test span (``cross_validation`` with ``refit=False``), with the same calendar
inputs as ours (sin/cos of the hour of day and the day of week, known for the forecast steps). Missing values are
linearly interpolated for the peer (it takes no gaps). Writes ``forecast_origin``, ``timestamp``, ``forecast``.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pandas as pd

CALENDAR = ["hour_sin", "hour_cos", "dow_sin", "dow_cos"]


def with_calendar(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (``ds``, ``y``) with sin/cos pairs of the hour of day and day of week, as ``data.calendar`` has."""
    hour = frame["ds"].dt.hour + frame["ds"].dt.minute / 60
    day = frame["ds"].dt.day_of_week + hour / 24
    frame = frame.assign(unique_id="series")
    for name, value, period in (("hour", hour, 24), ("dow", day, 7)):
        frame[f"{name}_sin"] = np.sin(2 * np.pi * value / period)
        frame[f"{name}_cos"] = np.cos(2 * np.pi * value / period)
    return frame


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, help="JSON written by scripts/forecast_peer.py")
    spec = json.loads(open(parser.parse_args().spec).read())
    from neuralforecast import NeuralForecast
    from neuralforecast.models import LSTM

    frame = pd.read_csv(spec["series"], parse_dates=["ds"])
    frame["y"] = frame["y"].interpolate(limit_direction="both")
    frame = with_calendar(frame)
    model = LSTM(
        h=spec["horizon"],
        input_size=spec["lookback"],
        futr_exog_list=CALENDAR,
        encoder_hidden_size=spec["hidden_size"],
        encoder_n_layers=spec["num_layers"],
        decoder_hidden_size=spec["hidden_size"],
        learning_rate=spec["lr"],
        max_steps=spec["max_steps"],
        batch_size=1,
        windows_batch_size=spec["batch_size"],
        val_check_steps=max(1, spec["max_steps"] // 5),
        early_stop_patience_steps=-1,
        scaler_type="standard",
        random_seed=spec["seed"],
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=False,
    )
    forecaster = NeuralForecast(models=[model], freq=spec["freq"])
    frame = frame.iloc[: spec["rows"]]  # the series ends with the last step our backtest forecasts
    out = forecaster.cross_validation(
        frame,
        n_windows=None,
        val_size=spec["val_rows"],
        test_size=spec["test_steps"],
        step_size=spec["stride"],
        refit=False,
    )
    out = out.rename(columns={"cutoff": "forecast_origin", "ds": "timestamp", "LSTM": "forecast"})
    out[["forecast_origin", "timestamp", "forecast"]].to_csv(spec["output"], index=False)
    print(f"peer: {len(out)} forecasts, {out['forecast_origin'].nunique()} origins -> {spec['output']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

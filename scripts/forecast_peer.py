"""The peer LSTM's virtualenv and its run, from the benchmark's side (scripts/benchmark_forecast.py).

The peer (neuralforecast's ``LSTM``, :mod:`scripts.peer_lstm`) lives in its own venv, ``runs/peer_venv`` by default,
never in the project's: :func:`ensure_venv` creates it on first use with ``torch==2.13.0`` (the CPU wheel here; a
plain ``torch`` would pull a multi-GB CUDA build) and then neuralforecast under a constraints file holding that pin.
A failed install or peer run raises: the peer row is never left out silently.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
PEER_VENV = REPO / "runs" / "peer_venv"
TORCH_PIN = "torch==2.13.0"
PEER_PACKAGE = "neuralforecast==3.3.0"


def ensure_venv(venv: Path = PEER_VENV) -> Path:
    """The peer venv's python, creating the venv and installing the peer first when it lacks neuralforecast."""
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", "import neuralforecast"], capture_output=True).returncode == 0:
        return python
    venv.mkdir(parents=True, exist_ok=True)
    pins = venv / "constraints.txt"
    pins.write_text(TORCH_PIN + "\n")
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [python, "-m", "pip", "install", "--quiet", TORCH_PIN],
        [python, "-m", "pip", "install", "--quiet", "-c", str(pins), PEER_PACKAGE],
    ]
    for step in steps:
        print("peer venv:", " ".join(map(str, step)), flush=True)
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(
                f"the peer venv {venv} could not be set up: {' '.join(map(str, step))} failed:\n{done.stderr[-3000:]}"
            )
    return python


def run_peer(python: Path, workdir: Path, name: str, series: pd.Series, ours: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Fit the peer on ``series`` and forecast every origin of our backtest table ``ours``.

    Args:
        python: :func:`ensure_venv`.
        workdir: where the series, spec and forecasts are written.
        name: file stem of this run.
        series: the resampled series (int64 ns index, original scale) our model saw.
        ours: our backtest rows (``forecast_origin``, ``timestamp``, ``step``).
        spec: horizon, lookback, freq, hidden_size, num_layers, lr, max_steps, batch_size, seed, val_rows.

    Returns:
        The peer's ``forecast_origin``, ``timestamp``, ``forecast`` rows (datetimes).
    """
    times = pd.to_datetime(series.index.to_numpy(dtype=np.int64))
    last = ours["timestamp"].max()
    first_origin = ours["forecast_origin"].min()
    rows = int(np.searchsorted(times.to_numpy(), np.datetime64(last), side="right"))
    test_steps = rows - int(np.searchsorted(times.to_numpy(), np.datetime64(first_origin), side="right"))
    csv, spec_path, output = (workdir / f"{name}.{kind}" for kind in ("series.csv", "spec.json", "peer.csv"))
    pd.DataFrame({"ds": times, "y": series.to_numpy()}).to_csv(csv, index=False)
    stride = int(ours["forecast_origin"].drop_duplicates().diff().dropna().min() / (times[1] - times[0]))
    spec = {**spec, "series": str(csv), "output": str(output), "rows": rows, "test_steps": test_steps, "stride": stride}
    spec_path.write_text(json.dumps(spec, indent=1))
    done = subprocess.run(
        [python, str(REPO / "scripts" / "peer_lstm.py"), "--spec", str(spec_path)], capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"the peer run {name} failed:\n{done.stderr[-4000:]}")
    return pd.read_csv(output, parse_dates=["forecast_origin", "timestamp"])

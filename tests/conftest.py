"""Shared fixtures: tiny real series, CLI runs in a temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
GLUCOSE_EXCERPT = DATA / "cgm_glucose_excerpt.csv"

os.environ.setdefault("PYTHONHASHSEED", "0")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny LSTMs run fastest on one thread (several threads on a busy 2-core machine are ~100x slower).

    ``OMP_NUM_THREADS`` too: the CLI's runtime setup sets torch's thread count from it, in-process and in subprocesses.
    """
    threads, omp = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    if omp is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = omp


@pytest.fixture
def sine_csv(tmp_path: Path) -> Path:
    """A 400-step daily sine wave with noise: small, seasonal, learnable in a few epochs."""
    rng = np.random.default_rng(0)
    t = np.arange(400)
    table = pd.DataFrame(
        {
            "date": pd.date_range("2020-01-01", periods=len(t), freq="D"),
            "value": 10 + 3 * np.sin(2 * np.pi * t / 7) + 0.1 * rng.standard_normal(len(t)),
        }
    )
    path = tmp_path / "sine.csv"
    table.to_csv(path, index=False)
    return path


def tiny_fit_args(root: Path, *extra: str) -> list[str]:
    """CLI arguments for a seconds-long fit in ``root`` on the default config."""
    return [
        "--config", str(REPO / "configs" / "default.yaml"),
        "--trainer.max_epochs=2",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.logger.init_args.save_dir={root}",
        "--model.hidden_size=8",
        "--model.num_layers=1",
        *extra,
    ]

"""Shared fixtures (plain helpers live in tests/helpers.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.helpers import write_weekly_sine

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
    return write_weekly_sine(tmp_path / "sine.csv", steps=400)

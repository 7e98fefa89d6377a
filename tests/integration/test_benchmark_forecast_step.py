"""``scripts/benchmark_forecast_step.py``: one run of an arm times its training steps after the first epoch."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from scripts import benchmark_forecast_step


@pytest.mark.slow
@pytest.mark.parametrize("arm", ["plain", "recipe + quantiles"])
def test_a_run_reports_its_time_per_step(tmp_path: Path, arm: str, one_thread) -> None:
    try:
        result = benchmark_forecast_step.child(arm, str(tmp_path), flush_denormal=True)
    finally:
        torch.set_flush_denormal(False)  # the process-wide default, for the tests after this one
    assert set(result) == {"wall_ms", "cpu_ms"}
    assert all(math.isfinite(v) and 0 < v < 10_000 for v in result.values())

"""``scripts/benchmark_forecast.py --quick`` runs every arm on the three series and writes its table and figure.

The peer arm (neuralforecast in its own venv) is not part of this test: ``--peer none`` is passed explicitly, and the
script's full run (README "Forecast quality") exercises the peer; a missing or broken peer venv fails that run.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from scripts import benchmark_forecast


@pytest.mark.slow
def test_quick_run_scores_every_arm_on_every_series(tmp_path: Path, one_thread) -> None:
    table, figure = tmp_path / "forecast_quality.md", tmp_path / "week.png"
    results = benchmark_forecast.main(["--quick", "--peer", "none", "--output", str(table), "--figure", str(figure)])
    arms = [label for label, _ in benchmark_forecast.ARMS]
    assert [(s.key, label) for s, label, _ in results] == [(s.key, a) for s in benchmark_forecast.SERIES for a in arms]
    for series, label, result in results:
        (run,) = result["runs"]
        assert run["steps"] >= 24 * 10, (series.key, run["steps"])  # at least ten day-ahead origins
        assert all(math.isfinite(run[key]) and run[key] > 0 for key in ("mae", "mase", "ratio_day", "ratio_week"))
        assert run["ratio_best"] == pytest.approx(max(run["ratio_day"], run["ratio_week"]))
        assert ("coverage_80" in run) == label.startswith("recipe + quantiles")
        assert ("coverage_80_uncalibrated" in run) == ("coverage_80" in run)  # before and after calibration
        if "coverage_80" in run:
            assert 0 < run["coverage_80"] < 1
    text = table.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(results)  # the header and one row per (series, arm)
    assert all(f"| {s.name} | {label} |" in text for s, label, _ in results)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_quick_panel_run_scores_both_arms_with_time_and_memory(tmp_path: Path, one_thread) -> None:
    """``--panel --quick``: 115 series, with and without model.series_embedding, one epoch of 10 batches (~1 min)."""
    table = tmp_path / "forecast_panel.md"
    benchmark_forecast.main(["--panel", "--quick", "--output", str(table)])
    rows = [line for line in table.read_text().splitlines() if line.startswith("| one global model")]
    assert len(rows) == 2 and "series embedding (8 values)" in rows[1]
    cells = [float(cell.split()[0]) for cell in rows[1].split("|")[2:-1]]  # MAE ... series beaten ... peak RSS
    assert all(math.isfinite(cell) and cell >= 0 for cell in cells) and len(cells) == 9
    assert cells[0] > 0 and cells[-1] > 100  # MAE (departures per hour); peak RSS in MB: torch alone takes more

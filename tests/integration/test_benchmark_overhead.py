"""``scripts/benchmark_overhead.py --quick``: every shape's plain, bare and fit arm in fresh processes; RSS stages.
About a minute (ten interpreters), so in the slow tier."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_quick_run_reports_every_shape_and_the_rss_stages():
    done = subprocess.run(
        [sys.executable, "scripts/benchmark_overhead.py", "--quick", "--threads", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| batch ")]
    assert len(rows) == 9 and sum("| fit |" in r for r in rows) == 3, done.stdout  # 3 shapes x (plain, bare, fit)
    assert sum("| bare |" in r for r in rows) == 3
    fit_rows = [r for r in rows if "| fit |" in r]
    assert all(r.count(" to ") == 2 for r in fit_rows), fit_rows  # fit - bare in wall and CPU time, with ranges
    assert "Regression guard (issue 24): tiny shape fit - bare = " in done.stdout
    for stage in ("Python itself", "import torch", "imports", "cli_built", "data", "first_step", "peak"):
        assert f"| {stage} |" in done.stdout


@pytest.mark.slow
def test_step_cost_breakdown_times_every_part_against_the_full_fit_and_bare_lightning():
    done = subprocess.run(
        [sys.executable, "scripts/step_cost_breakdown.py", "--epochs", "7", "--windows", "400"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ")][1:]  # after the header
    parts = ["fit, everything on", "spike callback", "LR monitor", "checkpoint callback", "callbacks idle", "loggers"]
    assert [any(r.startswith(f"| {p}") for r in rows) for p in parts] == [True] * len(parts), done.stdout
    assert "fit - bare:" in rows[-1]

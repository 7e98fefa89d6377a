"""``scripts/benchmark_diagnosis.py --quick`` runs the doctor on scenarios of both halves and writes their goals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.diagnosis_scenarios import QUICK
from tests.helpers import REPO, clean_env


@pytest.mark.slow
def test_quick_benchmark_scores_both_halves(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "scripts.benchmark_diagnosis", "--quick", "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=REPO, env=clean_env(), capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads((tmp_path / "results.json").read_text())
    assert {r["scenario"] for r in rows} == set(QUICK)
    assert {r["half"] for r in rows} == {"tuning", "held_out"}
    injected = next(r for r in rows if r["scenario"] == "elnino_sentinels")
    assert len(injected["truth"]) == 3  # the three -99.99 months, by timestamp
    table = (tmp_path / "table.md").read_text()
    assert "| goal | tuning | held_out |" in table

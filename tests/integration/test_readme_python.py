"""The README's "Python API" section runs as written: its ```python blocks, in order, in one namespace, in a tmp cwd."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks(section: str) -> list[str]:
    """The ```python blocks of the README section headed ``## <section>``."""
    text = README.read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, flags=re.DOTALL)


def test_readme_python_api_runs_as_written(tmp_path, monkeypatch, one_thread):
    blocks = python_blocks("Python API")
    assert len(blocks) == 3 and all(len([x for x in b.splitlines() if x.strip()]) <= 10 for b in blocks)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)
    lines = printed.getvalue().splitlines()
    backtest, future, df = namespace["backtest"], namespace["future"], namespace["df"]

    # first rows as printed: headers, then rows numbered 0, 1, 2
    headers = [i for i, line in enumerate(lines) if line.split()[:2] == ["series", "timestamp"]]
    assert len(headers) == 1 and lines[headers[0]].split() == ["series", "timestamp", "step", "load", "load_true"]
    assert [line.split()[0] for line in lines[headers[0] + 1 : headers[0] + 4]] == ["0", "1", "2"]
    assert any(line.split()[:3] == ["series", "forecast_origin", "timestamp"] for line in lines)

    # backtest: the test span, steps 1..6 per window, the truth is the data itself, forecasts on the original scale
    columns = ["window_id", "series", "forecast_origin", "timestamp", "step", "load", "load_true"]
    assert list(backtest.columns) == columns
    assert backtest["step"].head(6).tolist() == [1, 2, 3, 4, 5, 6]
    truth = df.set_index("time")["load"]
    np.testing.assert_allclose(backtest["load_true"], truth.loc[backtest["timestamp"]].to_numpy(), rtol=1e-6)
    assert backtest["timestamp"].min() >= df["time"].iloc[int(len(df) * 0.85) - 1]
    assert backtest["load"].between(8.0, 12.0).all()  # data units (10 +- 1), not scaled ones (0 +- 1.4)

    # forecast from the checkpoint: the 6 hours after the new data's last row, from the last row
    assert len(future) == 6 and "load_true" not in future.columns
    last = df["time"].iloc[-1]
    assert (future["forecast_origin"] == last).all()
    assert future["timestamp"].tolist() == [last + pd.Timedelta(hours=h) for h in range(1, 7)]
    assert future["load"].between(8.0, 12.0).all()
    assert (tmp_path / "runs").is_dir()  # the trainer wrote into the tmp cwd, not into the repository

"""Helpers shared by the tests: repository paths, small real-looking series written to CSV, CLI argument lists, and
small real filesystems (a tmpfs mount, a read-only folder: root only, the test skips and says why elsewhere)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
GLUCOSE_EXCERPT = FIXTURES / "cgm_glucose_excerpt.csv"
ELECTRICITY_HALFHOURLY = FIXTURES / "taylor_electricity_halfhourly.csv"
FLIGHTS_PANEL = REPO / "scripts" / "forecast_series" / "nyc_flights_routes_hourly.csv.gz"  # 115 hourly series


def write_weekly_sine(
    path: Path,
    steps: int,
    start: str = "2020-01-01",
    noise: float = 0.1,
    scale_rows: dict[int, float] | None = None,
    shift: float = 0.0,
    gain: float = 1.0,
    flat_column: bool = False,
) -> Path:
    """``steps`` daily values ``shift + gain * (10 + 3 sin(2 pi t / 7) + noise * N(0, 1))`` (seed 0) in ``date, value``.

    Args:
        scale_rows: multiply these rows' values (injected outliers: ``{row: factor}``).
        flat_column: add a constant column ``flat`` of ones.
    """
    t = np.arange(steps)
    value = 10 + 3 * np.sin(2 * np.pi * t / 7) + noise * np.random.default_rng(0).standard_normal(steps)
    for row, factor in (scale_rows or {}).items():
        value[row] *= factor
    table = pd.DataFrame({"date": pd.date_range(start, periods=steps, freq="D"), "value": shift + gain * value})
    if flat_column:
        table["flat"] = np.ones(steps)
    table.to_csv(path, index=False)
    return path


def tiny_fit_args(root: Path, *extra: str) -> list[str]:
    """CLI arguments for a seconds-long fit in ``root`` on the default config."""
    return [
        "--config",
        str(REPO / "configs" / "default.yaml"),
        "--trainer.max_epochs=2",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.logger.init_args.save_dir={root}",
        "--model.hidden_size=8",
        "--model.num_layers=1",
        *extra,
    ]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without a cluster's launcher variables (tests may run inside a SLURM job), one thread each.

    The test's own Python comes first on ``PATH`` (launchers such as ``torchrun`` are found beside it).
    """
    launcher = ("MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE", "NODE_RANK", "GROUP_RANK")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "TORCHELASTIC_")) and k not in launcher}
    env.update(OMP_NUM_THREADS="1", PYTHONHASHSEED="0", PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}")
    env.update(extra)
    return env


def _mount(*args: str) -> str | None:
    """Run ``mount args``; the reason when it fails, else None."""
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    return None if done.returncode == 0 else (done.stderr.strip() or f"mount exited {done.returncode}")


def unmount(folder: Path) -> None:
    subprocess.run(["umount", "--lazy", str(folder)], capture_output=True, check=False)


@contextmanager
def tmpfs(folder: Path, size: str = "4m") -> Iterator[Path]:
    """Mount a ``size`` tmpfs at ``folder`` for the block."""
    folder.mkdir(parents=True, exist_ok=True)
    failed = _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(folder))
    if failed:
        pytest.skip(f"cannot mount a tmpfs at {folder} (needs root): {failed}")
    try:
        yield folder
    finally:
        unmount(folder)


def remount(folder: Path, mode: str) -> None:
    """Remount the filesystem mounted at ``folder`` with ``mode`` (``ro``, ``rw``)."""
    failed = _mount("-o", f"remount,{mode}", str(folder))
    assert failed is None, failed


def bind_read_only(folder: Path) -> str | None:
    """Make ``folder`` read-only, for root too (a read-only bind mount onto itself); the reason if that fails.

    Files open elsewhere (TensorBoard's event file in the run folder) stay writable, whereas remounting a whole
    filesystem read-only is refused while a file on it is open for writing. Undo with :func:`unmount`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    failed = _mount("--bind", str(folder), str(folder))
    if failed is None:
        failed = _mount("-o", "remount,ro,bind", str(folder))
        if failed:
            unmount(folder)
    return failed


@contextmanager
def read_only(folder: Path) -> Iterator[Path]:
    """``folder`` read-only for the block (see :func:`bind_read_only`)."""
    failed = bind_read_only(folder)
    if failed:
        pytest.skip(f"cannot make {folder} read-only with a bind mount (needs root): {failed}")
    try:
        yield folder
    finally:
        unmount(folder)

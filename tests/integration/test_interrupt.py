"""Ctrl-C and SIGTERM during fit, for real: the command line in a subprocess, the signal sent by the test.

A test-only callback holds the run at a chosen global step, after its first checkpoints are on disk (``HoldAt``
announces it in a marker file), so the signal lands mid-epoch every time. Ctrl-C (SIGINT) raises KeyboardInterrupt
right there; Lightning turns SIGTERM into its ``SIGTERMException`` after the batch under way. Either way the run must
exit non-zero (1 after Ctrl-C, as Lightning exits; 143 = 128 + SIGTERM, as a shell reports a terminated job), write
``spikes.json`` (with why it stopped) and the summary, and an exception checkpoint named
``interrupted-epochNNN-stepN.ckpt`` that loads and holds that step; ``last.ckpt`` must hold the same step.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from tests.helpers import REPO, clean_env, tiny_fit_args, write_weekly_sine

HOLD_STEP = 13  # 10 batches per epoch: 3 into the second epoch, after the epoch-0 checkpoints


class HoldAt(pl.Callback):
    """Test-only: at global step ``step``, touch ``marker`` and wait (in short sleeps) for a signal."""

    def __init__(self, step: int, marker: str) -> None:
        self.step, self.marker = step, marker

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step != self.step:
            return
        Path(self.marker).write_text(str(os.getpid()))
        deadline = time.monotonic() + 120
        while not trainer.received_sigterm and time.monotonic() < deadline:
            time.sleep(0.01)  # SIGINT raises KeyboardInterrupt in here; SIGTERM only sets the flag


def default_sigint() -> None:
    """In the child, before exec: Ctrl-C's default action, so that Python there turns it into KeyboardInterrupt.

    A job started in the background from a script (``(make test &)``, a CI runner that backgrounds its steps) ignores
    SIGINT, the child inherits that, and a Python that starts with SIGINT ignored keeps ignoring it: the run would
    never stop.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(
    ("signum", "step", "status"),
    [
        pytest.param(signal.SIGINT, HOLD_STEP, 1, id="ctrl-c"),  # Lightning's sys.exit(1) after KeyboardInterrupt
        pytest.param(signal.SIGTERM, HOLD_STEP + 1, 128 + signal.SIGTERM, id="sigterm", marks=pytest.mark.slow),
    ],
)
def test_ctrl_c_and_sigterm_write_spikes_json_and_a_checkpoint_named_interrupted(tmp_path, signum, step, status):
    csv = write_weekly_sine(tmp_path / "series.csv", steps=300)
    marker = tmp_path / "holding"
    hold = json.dumps({"class_path": f"{__name__}.HoldAt", "init_args": {"step": HOLD_STEP, "marker": str(marker)}})
    args = tiny_fit_args(
        tmp_path,
        f"--data.path={csv}",
        "--data.target_columns=[value]",
        "--data.lookback=10",
        "--data.horizon=2",
        "--data.batch_size=20",
        "--data.window_norm=none",
        "--trainer.max_epochs=5",
        "--forecast_plot.every_n_epochs=0",
        f"--trainer.callbacks+={hold}",
    )
    env = clean_env(PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    log = tmp_path / "run.log"
    with log.open("w") as output:
        run = subprocess.Popen(
            [sys.executable, "-m", "lightning_lstm", "fit", *args],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=output,
            preexec_fn=default_sigint,
        )
    try:
        deadline = time.monotonic() + 180
        while not marker.exists():
            assert run.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the run never reached the hold step"
            time.sleep(0.05)
        run.send_signal(signum)
        assert run.wait(timeout=120) == status, log.read_text()[-3000:]
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    folder = tmp_path / "default" / "version_0"
    report = json.loads((folder / "spikes.json").read_text())
    expected_reason = "KeyboardInterrupt" if signum == signal.SIGINT else "SIGTERMException"
    assert report["total_steps"] == step and expected_reason in report["stop_reason"], report
    interrupted = folder / "checkpoints" / f"interrupted-epoch001-step{step}.ckpt"
    assert interrupted.is_file(), sorted(p.name for p in (folder / "checkpoints").iterdir())
    assert torch.load(interrupted, weights_only=True)["global_step"] == step
    assert torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == step
    assert not [p for p in (folder / "checkpoints").iterdir() if p.name.startswith("best-") and f"step{step}" in p.name]
    assert "Loss spikes:" in log.read_text()  # the summary, on the console

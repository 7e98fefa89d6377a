"""A run folder written before the spike feature moved into one package keeps working (tests/fixtures/run_c0d3e37).

The fixture was written by commit c0d3e37 (``fit --config configs/default.yaml`` with a 4-unit, one-layer LSTM for
3 epochs at lr 0.05 and a 10-step spike window, so that the detector recorded 2 spikes): its ``config.yaml`` (the
class path ``lightning_lstm.cli.run_logger.RunLogger`` that users copy into their own configs), ``hparams.yaml``,
``spikes.json`` and ``checkpoints/last.ckpt`` (whose spike-callback state sits under ``LossSpikeCallback``).
The installed console script must predict from it and resume it, the spike detector's state restored.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.helpers import REPO, clean_env

FIXTURE = REPO / "tests" / "fixtures" / "run_c0d3e37"
SCRIPT = Path(sys.executable).parent / "lightning-lstm"
OLD_SPIKE_STEPS = [21, 23]  # the spikes the old run recorded (its spikes.json)


def run_script(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([str(SCRIPT), *args], cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def copy_of_the_old_run(tmp_path: Path) -> Path:
    run = tmp_path / "old_run"
    shutil.copytree(FIXTURE, run)
    assert [s["global_step"] for s in json.loads((run / "spikes.json").read_text())["spikes"]] == OLD_SPIKE_STEPS
    return run


def test_predict_from_an_old_run_folder(tmp_path: Path) -> None:
    run = copy_of_the_old_run(tmp_path)
    run_script(
        tmp_path, "predict", "--config", str(run / "config.yaml"), "--ckpt_path", str(run / "checkpoints/last.ckpt"),
        "--trainer.default_root_dir=runs", "--trainer.enable_progress_bar=false",
    )  # fmt: skip
    written = list(tmp_path.rglob("predictions.csv"))  # beside the checkpoint's run folder: old_run/predict/
    assert written == [run / "predict" / "predictions.csv"], written
    table = pd.read_csv(written[0])
    assert len(table) == 4 and table.filter(like="co2").notna().all().all()


def test_resume_an_old_run_keeps_its_spike_records_and_detector(tmp_path: Path) -> None:
    run = copy_of_the_old_run(tmp_path)
    run_script(
        tmp_path, "fit", "--config", str(run / "config.yaml"), "--ckpt_path", str(run / "checkpoints/last.ckpt"),
        "--trainer.max_epochs=4", "--trainer.default_root_dir=runs", "--trainer.logger.init_args.version=resumed",
    )  # fmt: skip
    report = json.loads((tmp_path / "runs" / "legacy" / "resumed" / "spikes.json").read_text())
    steps = [s["global_step"] for s in report["spikes"]]
    assert steps[:2] == OLD_SPIKE_STEPS  # the records came back from the checkpoint
    assert report["total_steps"] == 88 and report["epochs"] == 4  # 22 steps per epoch, one more epoch
    assert all(step > 66 for step in steps[2:])  # new spikes only from the resumed epoch

"""The loss-spike callback under DDP on two CPU processes (gloo), started from the command line as users start it.

Windows of 10 steps with a stride of 10 do not overlap, so one outlier lands in exactly one window, and the
DistributedSampler (no shuffling) gives that window to rank 1 only: only rank 1's batch spikes. Both ranks must
still decide the same at the same steps (each rank's own count and digest of its decisions is gathered into
``spikes.json``), skip the update together, save the batch of both ranks once, and stop together after 3 spikes with
a checkpoint. About 20 s on two quiet cores; the launch has a timeout, so a hang (a collective called on one rank
only) fails instead of blocking.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import REPO, clean_env, write_weekly_sine

pytestmark = pytest.mark.slow  # two gloo processes, ~15 s: the slow tier
TIMEOUT = 300  # seconds: generous for a loaded machine, short of a hang
OUTLIER_ROW = 138  # a target row of the training window starting at row 130: window 13 of 42, rank 1's 7th
OUTLIER_WINDOW = 130
STEPS_PER_EPOCH = 5  # 21 windows per rank in batches of 4, the last partial one dropped
WARMUP = 5
STOP_AFTER = 3


def write_series(path: Path) -> Path:
    return write_weekly_sine(path, steps=600, scale_rows={OUTLIER_ROW: 30})


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("spikes_ddp")
    csv = write_series(root / "series.csv")
    command = [
        sys.executable,
        "-m",
        "lightning_lstm",
        "fit",
        "--config",
        str(REPO / "configs" / "default.yaml"),
        "--trainer.strategy=ddp",
        "--trainer.devices=2",
        "--trainer.accelerator=cpu",
        "--trainer.max_epochs=6",
        "--trainer.num_sanity_val_steps=0",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.logger.init_args.save_dir={root}",
        "--model.hidden_size=4",
        "--model.num_layers=1",
        "--model.scheduler=null",
        f"--data.path={csv}",
        "--data.target_columns=[value]",
        "--data.lookback=8",
        "--data.horizon=2",
        "--data.stride=10",
        "--data.batch_size=4",
        "--data.shuffle=false",
        "--data.drop_last=true",
        "--data.window_norm=none",
        "--forecast_plot.every_n_epochs=0",
        "--spikes.window=20",
        f"--spikes.warmup={WARMUP}",
        "--spikes.actions=[skip, stop, save_batch]",
        f"--spikes.stop_after={STOP_AFTER}",
    ]
    process = subprocess.Popen(
        command,
        cwd=root,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # every rank
        output, _ = process.communicate()
        pytest.fail(f"the DDP fit hung for {TIMEOUT} s:\n{output[-4000:]}")
    assert process.returncode == 0, output[-6000:]
    (folder,) = sorted(root.glob("default/version_*"))  # rank zero's run folder only
    return folder


def test_both_ranks_decide_the_same_when_only_one_ranks_batch_spikes(run: Path):
    report = json.loads((run / "spikes.json").read_text())
    spikes = report["spikes"]
    expected = [epoch * STEPS_PER_EPOCH + 1 for epoch in range(1, STOP_AFTER + 1)]  # batch 1 of epochs 1-3
    assert [s["global_step"] for s in spikes] == expected
    assert all(s["top_windows"][0]["window_id"] == OUTLIER_WINDOW and s["skipped"] for s in spikes)
    ranks = report["ranks"]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert ranks[0] | {"rank": 1} == ranks[1]  # same count, same skips, same steps (digest), seen from each rank
    assert ranks[0]["spikes"] == ranks[0]["skipped"] == STOP_AFTER


def test_the_saved_batch_holds_both_ranks_and_the_outlier_only_on_rank_one(run: Path):
    saved = sorted((run / "spike_batches").iterdir())
    assert len(saved) == STOP_AFTER
    payload = torch.load(saved[0], weights_only=True)
    rank0, rank1 = payload["ranks"]
    assert OUTLIER_WINDOW in rank1["window_id"].tolist() and OUTLIER_WINDOW not in rank0["window_id"].tolist()
    assert set(rank0["window_id"].tolist()).isdisjoint(rank1["window_id"].tolist())


def test_both_ranks_stop_together_after_n_spikes_with_a_checkpoint(run: Path):
    report = json.loads((run / "spikes.json").read_text())
    stop_step = STOP_AFTER * STEPS_PER_EPOCH + 2  # the step after the third spike's
    assert report["total_steps"] == stop_step
    assert f"stop_after={STOP_AFTER}" in report["stop_reason"]
    checkpoint = torch.load(run / "checkpoints" / "spike-stop.ckpt", weights_only=True)
    assert checkpoint["global_step"] == stop_step
    assert checkpoint["callbacks"]["LossSpikeCallback"]["loss_detector"]["steps_seen"] == stop_step

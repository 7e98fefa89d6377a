"""Kill -9 in the middle of an epoch, then ``fit --ckpt_path last``: the same weights and metrics as an unbroken run.

A seeded fit (shuffled windows, dropout between two LSTM layers, one CPU thread, ``trainer.deterministic``) writes
``last.ckpt`` every ``K`` optimizer steps. The run to be killed runs in a subprocess with :class:`HoldAfterCheckpoint`
added: once the step-``K`` checkpoint is on disk (mid-way through the second epoch) it announces that and waits, and
the test sends SIGKILL, so the kill lands mid-epoch every time instead of racing the next save. ``fit --ckpt_path
last`` then finishes the run, and it must equal a run that was never interrupted, exactly: ``torch.equal`` on every
weight and optimizer moment, ``==`` on every logged epoch metric and on ``validate`` / ``test`` results. Exact, not
``allclose``: both runs do the same float operations in the same order on one thread, and a resume that repeats or
drops a batch at a small learning rate moves the weights by less than a loose tolerance would hide.

Why it holds (lightning_lstm/data/loaders.py): Lightning 2.6 alone trains the *first* ``n - k`` batches of a fresh
iterator after a checkpoint written ``k`` batches into an ``n``-batch epoch, and reshuffles from a global RNG the
checkpoint does not hold. The training loader here stores its epoch, the batches finished and the torch RNG state
(dropout) in the checkpoint, and the epoch's order comes from ``(seed, epoch)``. Limits: one process (under DDP
PyTorch's ``DistributedSampler`` is used and Lightning cannot resume it mid-epoch: it warns); the kill lands after a
checkpoint is complete (a kill *during* the write is not exercised here); ``last.ckpt`` holds the state at its step, so
the steps after it are recomputed, not lost.

``last.ckpt`` follows the run whatever the monitor does (the last tests): Lightning 2.6 alone writes it only together
with a top-k checkpoint, i.e. with the CLI's defaults (``checkpoint.monitor: val/loss``, ``save_top_k: 1``) only when
``val/loss`` improves; :class:`~lightning_lstm.callbacks.checkpoint.RunCheckpoint` rewrites it at every epoch end, at
the end of training and every ``checkpoint.last_every_n_train_steps`` steps. The kill test checkpoints by steps with
``checkpoint.monitor=null``, so that a top-k file lands mid-epoch as well.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_lstm.cli import build_cli
from tests.helpers import REPO, write_weekly_sine

EPOCHS, BATCH = 3, 20
STEPS_PER_EPOCH = 10  # 199 training windows (300 rows, 70 % train, lookback 10, horizon 2) in batches of 20
KILL_STEP = 15  # checkpoints every 15 steps: 5 batches into the second epoch (the kill), and at the end (step 30)


class HoldAfterCheckpoint(pl.Callback):
    """Test-only: at ``step`` (its checkpoint already written), touch ``marker`` and wait to be killed."""

    def __init__(self, step: int, marker: str) -> None:
        self.step, self.marker = step, marker

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            Path(self.marker).write_text(str(os.getpid()))
            time.sleep(600)


# One thread in every run (the CLI reads OMP_NUM_THREADS), so all runs add floats in the same order.
pytestmark = pytest.mark.usefixtures("one_thread")


def write_series(path: Path) -> Path:
    return write_weekly_sine(path, steps=300, start="2021-01-01", noise=0.3)


def fit_args(save_dir: Path, csv: Path, *extra: str) -> list[str]:
    return [
        "fit",
        "--config",
        str(REPO / "configs" / "default.yaml"),
        f"--trainer.logger.init_args.save_dir={save_dir}",
        f"--trainer.max_epochs={EPOCHS}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--trainer.log_every_n_steps=3",
        "--model.hidden_size=8",
        "--model.num_layers=2",
        "--model.dropout=0.2",
        f"--data.path={csv}",
        "--data.target_columns=[value]",
        "--data.lookback=10",
        "--data.horizon=2",
        f"--data.batch_size={BATCH}",
        "--data.shuffle=true",
        "--data.window_norm=none",
        "--forecast_plot.every_n_epochs=0",
        f"--checkpoint.every_n_train_steps={KILL_STEP}",
        "--checkpoint.monitor=null",  # a checkpoint every KILL_STEP steps whatever val/loss does (see the last test)
        *extra,
    ]


def scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def evaluate(config: Path, ckpt: Path) -> dict[str, float]:
    scores = {}
    for command in ("validate", "test"):
        cli = build_cli(
            [command, "--config", str(config), f"--ckpt_path={ckpt}", "--trainer.enable_progress_bar=false"]
        )
        scores.update({k: float(v) for k, v in cli.trainer.callback_metrics.items()})
    return scores


def kill_at_checkpoint(save_dir: Path, csv: Path) -> Path:
    """Run the fit in a subprocess, SIGKILL it once the step-KILL_STEP checkpoint is written; return last.ckpt."""
    save_dir.mkdir(parents=True, exist_ok=True)
    marker = save_dir / "holding"
    hold = json.dumps(
        {"class_path": f"{__name__}.HoldAfterCheckpoint", "init_args": {"step": KILL_STEP, "marker": str(marker)}}
    )
    command = [sys.executable, "-m", "lightning_lstm", *fit_args(save_dir, csv, f"--trainer.callbacks+={hold}")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    log = save_dir / "killed_run.log"
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert process.poll() is None, f"the run ended before step {KILL_STEP}:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no mid-epoch checkpoint after 300 s"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return save_dir / "default" / "version_0" / "checkpoints" / "last.ckpt"


@pytest.mark.slow  # ~11 s: make test stays under 5 minutes; .ci/run runs the slow tier after it
def test_sigkill_mid_epoch_then_resume_equals_the_uninterrupted_run(tmp_path: Path) -> None:
    csv = write_series(tmp_path / "series.csv")
    build_cli(fit_args(tmp_path / "whole", csv))
    whole = tmp_path / "whole" / "default" / "version_0"
    reference = torch.load(whole / "checkpoints" / "last.ckpt", weights_only=True)
    assert reference["global_step"] == EPOCHS * STEPS_PER_EPOCH

    killed = kill_at_checkpoint(tmp_path / "broken", csv)
    left = torch.load(killed, weights_only=True)
    (loader_state,) = left["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert (left["epoch"], left["global_step"]) == (1, KILL_STEP)  # mid-epoch: 5 of the second epoch's 10 batches
    assert (loader_state["epoch"], loader_state["batches_done"]) == (1, KILL_STEP - STEPS_PER_EPOCH)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # a folder of its own (by default the resumed fit continues version_0), to compare its metrics alone
        build_cli(fit_args(tmp_path / "broken", csv, "--ckpt_path=last", "--trainer.logger.init_args.version=resumed"))
    assert not [w for w in caught if "not resumable" in str(w.message)]  # Lightning warns about a plain loader
    resumed = tmp_path / "broken" / "default" / "resumed"
    final = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)

    assert final["global_step"] == reference["global_step"]
    assert final["state_dict"].keys() == reference["state_dict"].keys()
    for name, weight in reference["state_dict"].items():
        assert torch.equal(final["state_dict"][name], weight), name
    for mine, theirs in zip(
        final["optimizer_states"][0]["state"].values(), reference["optimizer_states"][0]["state"].values(), strict=True
    ):
        assert all(torch.equal(mine[k], theirs[k]) for k in ("exp_avg", "exp_avg_sq", "step"))

    # Every epoch metric logged after the resume (the interrupted epoch's train/loss_epoch included) is identical.
    before, after = scalars(whole), scalars(resumed)
    for tag in ("train/loss_epoch", "val/loss", "val/mae", "hp_metric", "train/loss_step", "train/grad_norm"):
        assert after[tag] and set(after[tag]) <= set(before[tag]), tag
    assert [s for s, _ in after["train/loss_epoch"]] == [s for s, _ in before["train/loss_epoch"]][1:]

    config = whole / "config.yaml"
    assert evaluate(config, resumed / "checkpoints" / "last.ckpt") == evaluate(
        config, whole / "checkpoints" / "last.ckpt"
    )


def test_last_ckpt_follows_every_epoch_with_the_default_checkpoint_settings(tmp_path: Path) -> None:
    csv = write_series(tmp_path / "series.csv")
    build_cli(
        [
            "fit",
            "--config",
            str(REPO / "configs" / "default.yaml"),
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            f"--trainer.max_epochs={EPOCHS}",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
            "--model.hidden_size=4",
            "--model.num_layers=1",
            "--model.optimizer.init_args.lr=0",  # val/loss never improves
            f"--data.path={csv}",
            "--data.target_columns=[value]",
            "--data.lookback=10",
            "--data.horizon=2",
            "--data.window_norm=none",
            "--forecast_plot.every_n_epochs=0",
        ]
    )
    last = torch.load(tmp_path / "default" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == EPOCHS - 1  # Lightning alone: 0, the only epoch whose val/loss was a new best


def plateau_fit(save_dir: Path, csv: Path, *extra: str) -> list[str]:
    """The CLI's checkpoint defaults (monitor val/loss, save_top_k 1, save_last) and a learning rate of 0: the
    validation loss is the same every epoch, so after epoch 0 it never improves."""
    return [
        "fit",
        "--config",
        str(REPO / "configs" / "default.yaml"),
        f"--trainer.logger.init_args.save_dir={save_dir}",
        f"--trainer.max_epochs={EPOCHS}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--model.hidden_size=4",
        "--model.num_layers=1",
        "--model.optimizer.init_args.lr=0",
        f"--data.path={csv}",
        "--data.target_columns=[value]",
        "--data.lookback=10",
        "--data.horizon=2",
        f"--data.batch_size={BATCH}",
        "--data.window_norm=none",
        "--forecast_plot.every_n_epochs=0",
        *extra,
    ]


class LastStepsSeen(pl.Callback):
    """Test-only: at the start of every training batch, the global step then and the one held by ``last.ckpt``."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        last = Path(trainer.checkpoint_callback.dirpath) / "last.ckpt"
        if last.exists():
            self.seen.append((trainer.global_step, torch.load(last, weights_only=True, mmap=True)["global_step"]))


def test_last_ckpt_holds_the_final_step_after_the_validation_loss_stopped_improving(tmp_path: Path) -> None:
    csv = write_series(tmp_path / "series.csv")
    build_cli(plateau_fit(tmp_path, csv))
    folder = tmp_path / "default" / "version_0" / "checkpoints"
    (best,) = folder.glob("best-*.ckpt")
    assert best.name == f"best-epoch000-step{STEPS_PER_EPOCH}.ckpt"  # the only epoch that was a new best
    last = torch.load(folder / "last.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (EPOCHS - 1, EPOCHS * STEPS_PER_EPOCH)


def test_last_ckpt_every_n_train_steps_for_long_epochs(tmp_path: Path) -> None:
    csv = write_series(tmp_path / "series.csv")
    seen = json.dumps({"class_path": f"{__name__}.LastStepsSeen"})
    cli = build_cli(
        plateau_fit(tmp_path, csv, "--checkpoint.last_every_n_train_steps=4", f"--trainer.callbacks+={seen}")
    )
    (recorder,) = [c for c in cli.trainer.callbacks if isinstance(c, LastStepsSeen)]
    # rewritten every 4 steps (4, 8, 12, ...) and at each epoch end (10, 20), whatever val/loss does
    saves = [k for k in range(1, EPOCHS * STEPS_PER_EPOCH + 1) if k % 4 == 0 or k % STEPS_PER_EPOCH == 0]
    assert recorder.seen == [(now, max(k for k in saves if k <= now)) for now in range(4, EPOCHS * STEPS_PER_EPOCH)]
    last = torch.load(tmp_path / "default" / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == EPOCHS * STEPS_PER_EPOCH

"""A loss that turns non-finite mid-training: the run reacts as ``spikes.actions`` says, and good checkpoints survive.

Two causes, each after a clean first epoch (whose checkpoint is the "last good" one):

* ``inf target``: one batch of the second epoch carries an ``inf`` target (a test callback writes it into the batch
  the model sees, since the data module itself refuses or fills non-finite values), so that step's loss is ``inf``.
* ``lr far too high``: ``ExponentialLR`` multiplies the learning rate by 1e15 after each epoch (real config only), so
  the weights overflow within a few steps of the second epoch.

And three reactions: ``[log]`` (the control: nothing protects the weights, the loss stays non-finite to the last
step, which proves the cause bites), ``[skip]`` (every spiking step's update is dropped: the fit runs to the end and
every checkpoint holds finite weights; after one bad batch the loss is finite again) and ``[stop]`` (the fit stops
cleanly and early, leaving ``spike-stop.ckpt``). With ``[log]`` and ``[stop]`` a checkpoint from before the blow-up
survives; in every case the newest checkpoint with finite weights loads with ``LSTMForecaster.load_from_checkpoint``
and forecasts finite values.

With ``[stop]`` the update of the step that triggers the stop is dropped, so ``spike-stop.ckpt`` holds the last good
weights (earlier spikes, below ``stop_after``, are applied unless ``skip`` is set too). (Lightning writes
``last.ckpt`` only when ``val/loss`` improves, and a NaN never does, which is why ``last.ckpt`` stays finite here; see
tests/test_evidence_resume.py for what that costs a resume.) About 40 s on two quiet cores.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import pytest
import torch

from lightning_lstm.cli import build_cli
from lightning_lstm.model.module import LSTMForecaster
from tests.helpers import REPO

EPOCHS, STEPS_PER_EPOCH = 3, 10  # 199 training windows in batches of 20
POISON_STEP = STEPS_PER_EPOCH + 3  # the fourth step of the second epoch


class PoisonTargets(pl.Callback):
    """Test-only: an ``inf`` target in the batch of global step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            batch["y"][0, 0, 0] = math.inf


CAUSES = {
    "inf target": [
        f'--trainer.callbacks+={{"class_path": "{__name__}.PoisonTargets", "init_args": {{"step": {POISON_STEP}}}}}'
    ],
    "lr far too high": [
        "--model.scheduler=torch.optim.lr_scheduler.ExponentialLR",
        "--model.scheduler.init_args.gamma=1e15",
    ],
}


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture(scope="module")
def csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nonfinite") / "series.csv"
    t = np.arange(300)
    value = 10 + 3 * np.sin(2 * np.pi * t / 7) + 0.1 * np.random.default_rng(0).standard_normal(len(t))
    pd.DataFrame({"date": pd.date_range("2021-01-01", periods=len(t), freq="D"), "value": value}).to_csv(
        path, index=False
    )
    return path


def fit(root: Path, csv: Path, cause: str, actions: str) -> Path:
    build_cli(
        [
            "fit",
            "--config",
            str(REPO / "configs" / "default.yaml"),
            f"--trainer.logger.init_args.save_dir={root}",
            f"--trainer.max_epochs={EPOCHS}",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
            "--model.hidden_size=8",
            "--model.num_layers=1",
            f"--data.path={csv}",
            "--data.target_columns=[value]",
            "--data.lookback=10",
            "--data.horizon=2",
            "--data.batch_size=20",
            "--data.window_norm=none",
            "--forecast_plot.every_n_epochs=0",
            "--spikes.stop_after=1",
            f"--spikes.actions={actions}",
            *CAUSES[cause],
        ]
    )
    return root / "default" / "version_0"


def finite_weights(checkpoint: dict) -> bool:
    return all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values() if v.is_floating_point())


def checkpoints(run: Path) -> dict[str, dict]:
    return {p.name: torch.load(p, weights_only=True) for p in (run / "checkpoints").glob("*.ckpt")}


@pytest.mark.parametrize("actions", ["[log]", "[skip]", "[stop]"])
@pytest.mark.parametrize("cause", list(CAUSES))
def test_a_non_finite_loss_gets_the_configured_reaction_and_good_checkpoints_survive(
    tmp_path: Path, csv: Path, cause: str, actions: str
) -> None:
    run = fit(tmp_path, csv, cause, actions)  # never raises: the reaction is the callback's, not an exception
    report = json.loads((run / "spikes.json").read_text())
    blowups = [s for s in report["spikes"] if s["nonfinite"] or not math.isfinite(s["grad_norm"])]
    assert blowups and blowups[0]["global_step"] >= STEPS_PER_EPOCH, report["spikes"][:3]  # after a clean epoch
    saved = checkpoints(run)

    if actions == "[log]":  # the control: nothing stops the non-finite update, the loss never comes back
        assert report["total_steps"] == EPOCHS * STEPS_PER_EPOCH and report["stop_reason"] is None
        assert report["spikes"][-1]["nonfinite"] and report["spikes"][-1]["global_step"] == report["total_steps"] - 1
    elif actions == "[skip]":
        assert report["total_steps"] == EPOCHS * STEPS_PER_EPOCH and report["stop_reason"] is None
        assert all(s["skipped"] for s in blowups)
        assert all(finite_weights(c) for c in saved.values()), {n: finite_weights(c) for n, c in saved.items()}
        if cause == "inf target":  # one bad batch: skipped, and training goes on with finite losses
            assert [s["global_step"] for s in blowups] == [POISON_STEP]
    else:
        assert (
            report["total_steps"] < EPOCHS * STEPS_PER_EPOCH and "stopped after 1 loss spikes" in report["stop_reason"]
        )
        assert "spike-stop.ckpt" in saved and saved["spike-stop.ckpt"]["global_step"] == report["total_steps"]

        assert finite_weights(saved["spike-stop.ckpt"])  # the triggering update was dropped

    # Under [log] the blow-up is survived by a finite checkpoint from before it; the newest finite one (any action)
    # loads and forecasts finite values.
    if actions == "[log]":
        assert any(finite_weights(c) and c["global_step"] <= blowups[0]["global_step"] for c in saved.values())
    good = max((c for c in saved.values() if finite_weights(c)), key=lambda c: c["global_step"])
    name = next(n for n, c in saved.items() if c is good)
    model = LSTMForecaster.load_from_checkpoint(run / "checkpoints" / name, map_location="cpu").eval()
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(4, 10, 1))).all()


@pytest.mark.parametrize("cause", list(CAUSES))
def test_the_stop_checkpoint_after_a_non_finite_loss_holds_finite_weights(
    tmp_path: Path, csv: Path, cause: str
) -> None:
    run = fit(tmp_path, csv, cause, "[stop]")
    assert finite_weights(torch.load(run / "checkpoints" / "spike-stop.ckpt", weights_only=True))


@pytest.mark.parametrize("cause", list(CAUSES))
def test_skip_and_stop_together_leave_a_finite_stop_checkpoint(tmp_path: Path, csv: Path, cause: str) -> None:
    run = fit(tmp_path, csv, cause, "[skip, stop]")
    stop = torch.load(run / "checkpoints" / "spike-stop.ckpt", weights_only=True)
    assert stop["global_step"] < EPOCHS * STEPS_PER_EPOCH and finite_weights(stop)

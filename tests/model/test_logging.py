"""One tiny CLI run (fit, then test), read back from its TensorBoard event files and checkpoints; then a resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from lightning_lstm.cli import build_cli
from tests.helpers import GLUCOSE_EXCERPT, REPO

CLIP = 1e-3  # tiny on purpose: the logged pre-clipping norm must exceed it
EPOCHS, BATCHES = 3, 3


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def fit_args(root: Path, csv: Path, *extra: str) -> list[str]:
    return [
        "--config",
        str(REPO / "configs" / "default.yaml"),
        f"--trainer.logger.init_args.save_dir={root}",
        "--trainer.logger.init_args.name=tiny",
        f"--trainer.max_epochs={EPOCHS}",
        f"--trainer.limit_train_batches={BATCHES}",
        "--trainer.limit_val_batches=2",
        "--trainer.log_every_n_steps=1",
        f"--trainer.gradient_clip_val={CLIP}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--model.hidden_size=4",
        "--model.num_layers=1",
        f"--data.path={csv}",
        "--data.target_columns=[value]",
        "--data.lookback=14",
        "--data.horizon=3",
        "--data.batch_size=32",
        "--forecast_plot.every_n_epochs=1",
        *extra,
    ]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``fit`` 3 epochs of 3 steps into ``tiny/version_0``; ``test`` the best checkpoint into ``version_0/test``."""
    root = tmp_path_factory.mktemp("logging")
    t = np.arange(300)
    csv = root / "sine.csv"
    pd.DataFrame(
        {"date": pd.date_range("2020-01-01", periods=len(t), freq="D"), "value": 10 + 3 * np.sin(2 * np.pi * t / 7)}
    ).to_csv(csv, index=False)
    build_cli(["fit", *fit_args(root, csv)])
    fitted = root / "tiny" / "version_0"
    best = next((fitted / "checkpoints").glob("best-*.ckpt"))
    build_cli(["test", "--config", str(fitted / "config.yaml"), f"--ckpt_path={best}"])
    return fitted


def accumulate(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    events.Reload()
    return events


def test_event_file_has_step_and_epoch_loss_lr_and_grad_norm(run: Path):
    tags = accumulate(run).Tags()["scalars"]
    for tag in (
        "train/loss_step",
        "train/loss_epoch",
        "train/grad_norm",
        "lr/weights",
        "lr/no_decay",
        "val/loss",
        "val/mae",
        "val/rmse",
        "val/r2",
        "val/wape",
        "hp_metric",
        "epoch",
    ):
        assert tag in tags, tags
    events = accumulate(run)
    assert len(events.Scalars("train/loss_step")) == EPOCHS * BATCHES
    assert len(events.Scalars("train/loss_epoch")) == EPOCHS


def test_grad_norm_is_logged_before_clipping(run: Path):
    norms = [e.value for e in accumulate(run).Scalars("train/grad_norm")]
    assert len(norms) == EPOCHS * BATCHES  # every optimizer step
    assert min(norms) > 10 * CLIP, norms  # clipped norms would all be <= CLIP


def test_hp_metric_is_the_best_validation_loss_and_hparams_are_logged(run: Path):
    events = accumulate(run)
    val_losses = [e.value for e in events.Scalars("val/loss")]
    assert len(val_losses) == EPOCHS
    assert events.Scalars("hp_metric")[-1].value == pytest.approx(min(val_losses))
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert {"hidden_size", "loss", "lookback", "horizon", "scaler"} <= set(hparams)
    assert hparams["hidden_size"].number_value == 4


def test_forecast_figures_every_epoch_and_at_test(run: Path):
    val_images = accumulate(run).Images("forecast/val/1")  # one image per window: forecast/val/1 .. /4
    assert [image.step for image in val_images] == list(range(EPOCHS))  # every_n_epochs=1: after each epoch
    assert val_images[0].encoded_image_string.startswith(b"\x89PNG")
    test_events = accumulate(run / "test")  # the checkpoint's run folder
    assert len(test_events.Images("forecast/test/1")) == 1
    assert "test/mae_ratio_naive" in test_events.Tags()["scalars"]


def test_checkpoints_load_with_weights_only_and_hold_plain_hyperparameters(run: Path):
    plain = (str, int, float, bool, type(None))

    def check_plain(value, where: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                check_plain(item, f"{where}.{key}")
        elif isinstance(value, (list, tuple)):
            for item in value:
                check_plain(item, where)
        else:
            assert isinstance(value, plain), f"{where} is a {type(value).__name__}"

    for path in (run / "checkpoints").glob("*.ckpt"):
        checkpoint = torch.load(path, weights_only=True)  # raises on any pickled object
        check_plain(checkpoint["hyper_parameters"], "hyper_parameters")
        check_plain(checkpoint["datamodule_hyper_parameters"], "datamodule_hyper_parameters")
        assert checkpoint["TimeSeriesDataModule"]["target_columns"] == ["value"]


def test_fit_ckpt_path_last_resumes_the_previous_run(run: Path):
    previous = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    val_losses = [e.value for e in accumulate(run).Scalars("val/loss")]
    assert previous["best_val_loss"] == pytest.approx(min(val_losses))
    config = yaml.safe_load((run / "config.yaml").read_text())
    build_cli(
        [
            "fit",
            *fit_args(
                run.parent.parent,
                Path(config["data"]["path"]),
                f"--trainer.max_epochs={EPOCHS + 1}",
                "--ckpt_path=last",
            ),
        ]
    )
    resumed = run  # the resumed fit continues its run folder: one curve, its step axis going on
    assert sorted(p.name for p in run.parent.iterdir()) == ["version_0"]
    steps = [e.step for e in accumulate(resumed).Scalars("train/loss_step")]
    assert steps == list(range((EPOCHS + 1) * BATCHES)), steps  # one more epoch, not four
    last = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (EPOCHS, (EPOCHS + 1) * BATCHES)
    assert last["best_val_loss"] <= previous["best_val_loss"]


def test_glucose_config_runs_on_the_glucose_excerpt(tmp_path: Path):
    build_cli(
        [
            "fit",
            "--config",
            str(REPO / "configs" / "glucose.yaml"),
            f"--data.path={GLUCOSE_EXCERPT}",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            f"--trainer.default_root_dir={tmp_path}",
            "--trainer.fast_dev_run=1",
            "--model.hidden_size=4",
            "--trainer.enable_progress_bar=false",
        ]
    )
    config = yaml.safe_load((REPO / "configs" / "glucose.yaml").read_text())
    assert config["data"]["path"] is None  # the repository stands alone: the user passes --data.path
    assert config["data"]["feature_columns"] == ["glucose", "isig"]


def test_the_progress_bar_shows_the_step_loss_and_the_loggers_get_it_once(tmp_path: Path):
    """With a progress bar the step loss still reaches the bar (``self.log(logger=False)``), while the loggers get it
    from the direct write only: one value per logging step, as without a bar."""
    t = np.arange(120)
    csv = tmp_path / "sine.csv"
    pd.DataFrame(
        {"date": pd.date_range("2020-01-01", periods=len(t), freq="D"), "value": 10 + 3 * np.sin(2 * np.pi * t / 7)}
    ).to_csv(csv, index=False)
    cli = build_cli(["fit", *fit_args(tmp_path, csv, "--trainer.enable_progress_bar=true", "--trainer.max_epochs=1")])
    assert "train/loss_step" in cli.trainer.progress_bar_metrics
    steps = [e.step for e in accumulate(tmp_path / "tiny" / "version_0").Scalars("train/loss_step")]
    assert steps == list(range(BATCHES))

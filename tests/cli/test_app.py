"""The command line end to end: print_config, fit on the bundled series and on a shared-data CSV, config saved."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_lstm.cli import build_cli
from scripts.config_reference import format_reference, readme_reference
from tests.helpers import GLUCOSE_EXCERPT, REPO, tiny_fit_args


def test_print_config_lists_linked_data_and_callback_groups():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lightning_lstm",
            "fit",
            "--config",
            str(REPO / "configs/default.yaml"),
            "--print_config",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    config = yaml.safe_load(out)
    assert config["data"]["target_columns"] == ["co2"]
    assert config["model"]["optimizer"]["class_path"] == "torch.optim.AdamW"
    assert {"checkpoint", "lr_monitor", "forecast_plot", "predictions"} <= set(config)
    assert "input_size" not in config["model"]  # linked from data.num_features
    assert "future_size" not in config["model"]  # linked from data.num_known_features
    assert config["data"]["calendar"] == [] and config["data"]["known_future_columns"] == []
    # README.md's config reference is this very output (regenerate: python scripts/config_reference.py).
    readme = (REPO / "README.md").read_text()
    assert readme_reference(readme) == format_reference(out), "README config reference is stale"


def test_fit_on_bundled_series_writes_events_checkpoints_and_config(tmp_path: Path):
    build_cli(["fit", *tiny_fit_args(tmp_path)])
    run = tmp_path / "default" / "version_0"
    assert (run / "config.yaml").is_file()
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert "last.ckpt" in names and any(n.startswith("best-") for n in names)
    events = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    tags = events.Tags()["scalars"]
    expected = (
        "train/loss_step",
        "train/loss_epoch",
        "val/loss",
        "val/mae",
        "train/grad_norm",
        "lr/weights",
        "lr/no_decay",
        "stability/loss_threshold",
        "stability/spike_count",
    )
    for tag in expected:
        assert tag in tags, tags
    # A rerun in the same folder gets a new version and does not fail on the saved config.
    build_cli(["fit", *tiny_fit_args(tmp_path, "--trainer.max_epochs=1")])
    assert (tmp_path / "default" / "version_1" / "config.yaml").is_file()


def test_fit_on_glucose_csv_from_the_command_line(tmp_path: Path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "lightning_lstm",
            "fit",
            *tiny_fit_args(tmp_path, "--trainer.max_epochs=1"),
            f"--data.path={GLUCOSE_EXCERPT}",
            "--data.time_column=datetime",
            "--data.target_columns=[glucose]",
            "--data.feature_columns=[glucose, isig]",
            "--data.duplicate_timestamps=mean",
            "--data.frequency=5min",
            "--data.missing=drop",
            "--data.lookback=24",
            "--data.horizon=6",
            "--data.window_norm=none",
            "--data.batch_size=128",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "default" / "version_0" / "checkpoints" / "last.ckpt").is_file()

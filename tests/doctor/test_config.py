"""The doctor's configs (lightning_lstm/doctor/config.py): dotted keys, overlays, the fit config and each run's."""

from __future__ import annotations

from pathlib import Path

import yaml

from lightning_lstm.doctor.config import apply_overlay, fit_config, get_key, probe_config, set_key, write_yaml

CONFIG = {
    "seed_everything": 7,
    "trainer": {"max_epochs": 30, "logger": {"class_path": "x.RunLogger", "init_args": {"name": "default"}}},
    "data": {"shuffle": False, "batch_size": 64},
    "doctor": {"out_dir": None},
    "config": ["cfg.yaml"],
    "ckpt_path": None,
}


def test_get_key_reads_dotted_keys_and_falls_back_to_the_default():
    assert get_key(CONFIG, "data.batch_size") == 64
    assert get_key(CONFIG, "trainer.logger.init_args.name") == "default"
    assert get_key(CONFIG, "data.missing", "interpolate") == "interpolate"
    assert get_key(CONFIG, "data.batch_size.deeper", 3) == 3  # a value, not a dict, on the way


def test_set_key_creates_the_dicts_on_the_way_and_replaces_a_value_that_is_no_dict():
    config = {"trainer": {"logger": True}}
    set_key(config, "trainer.logger.init_args.name", "probe")
    set_key(config, "model.hidden_size", 8)
    assert config == {"trainer": {"logger": {"init_args": {"name": "probe"}}}, "model": {"hidden_size": 8}}


def test_apply_overlay_returns_a_deep_copy_with_the_overlay_set():
    result = apply_overlay(CONFIG, {"data.shuffle": True, "trainer.gradient_clip_val": 0.5})
    assert result["data"] == {"shuffle": True, "batch_size": 64} and result["trainer"]["gradient_clip_val"] == 0.5
    assert CONFIG["data"]["shuffle"] is False and "gradient_clip_val" not in CONFIG["trainer"]
    result["trainer"]["logger"]["init_args"]["name"] = "changed"
    assert CONFIG["trainer"]["logger"]["init_args"]["name"] == "default"


def test_fit_config_drops_the_keys_only_the_doctor_subcommand_knows():
    assert sorted(fit_config(CONFIG)) == ["data", "seed_everything", "trainer"]


def test_probe_config_sets_the_budget_the_run_folder_and_no_plots_nor_checkpoints(tmp_path: Path):
    run = probe_config(CONFIG, {"data.shuffle": True}, "shuffle", tmp_path / "runs", 5)
    assert run["trainer"]["max_epochs"] == 5 and run["trainer"]["max_steps"] == -1
    assert run["trainer"]["logger"] == {
        "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
        "init_args": {"save_dir": str(tmp_path / "runs"), "name": "shuffle", "version": ""},
    }
    assert run["data"]["shuffle"] is True and run["seed_everything"] == 7 and "doctor" not in run
    assert run["forecast_plot"]["every_n_epochs"] == 0
    assert run["checkpoint"] == {"save_top_k": 0, "save_last": False}
    assert not run["trainer"]["enable_progress_bar"] and not run["trainer"]["enable_model_summary"]
    kept = probe_config(CONFIG, {}, "probe", tmp_path, None)  # the probe's own callback sets its epochs
    assert kept["trainer"]["max_epochs"] == 30


def test_write_yaml_puts_the_header_as_comments_and_reads_back(tmp_path: Path):
    path = write_yaml(fit_config(CONFIG), tmp_path / "deep" / "fixed.yaml", "first line\n\nchanged: data.shuffle")
    text = path.read_text()
    assert text.startswith("# first line\n#\n# changed: data.shuffle\n")
    assert yaml.safe_load(text) == fit_config(CONFIG)

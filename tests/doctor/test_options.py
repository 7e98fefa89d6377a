"""The doctor's options (lightning_lstm/doctor/options.py): the probe budget, the runs at once, the output folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightning.pytorch as pl
import pytest

from lightning_lstm.cli import build_cli
from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.doctor.options import DoctorOptions, ProbeBudget, out_dir, parallel_jobs, probe_epochs
from lightning_lstm.runtime.threads import available_cpus
from tests.helpers import tiny_fit_args


def test_probe_epochs_cover_the_minimum_steps_in_at_least_three_epochs_and_at_most_max_epochs():
    options = DoctorOptions()  # min_probe_steps=300
    assert probe_epochs(options, 22, 30) == 14  # ceil(300 / 22): the default config's 308 steps
    assert probe_epochs(options, 500, 30) == 3  # one epoch is enough steps, three epochs all the same
    assert probe_epochs(options, 22, 10) == 10  # the user's max_epochs caps it
    assert probe_epochs(options, 22, None) == probe_epochs(options, 22, -1) == 14  # no cap
    assert probe_epochs(options, 0, None) == 300  # an empty epoch counts as one step
    assert probe_epochs(DoctorOptions(probe_epochs=2), 22, 30) == 2  # given: taken as it is
    assert probe_epochs(DoctorOptions(min_probe_steps=45), 22, 30) == 3


def test_parallel_jobs_follow_the_usable_cpus_and_run_one_at_a_time_on_an_accelerator():
    assert parallel_jobs(DoctorOptions(jobs=5), {"accelerator": "gpu"}) == 5
    assert parallel_jobs(DoctorOptions(), {"accelerator": "cpu"}) == available_cpus()
    assert parallel_jobs(DoctorOptions(threads=2), {"accelerator": "cpu"}) == max(1, available_cpus() // 2)
    assert parallel_jobs(DoctorOptions(threads=10_000), {"accelerator": "cpu"}) == 1
    assert parallel_jobs(DoctorOptions(), {"accelerator": "gpu"}) == 1
    assert parallel_jobs(DoctorOptions(), {"accelerator": "cpu", "devices": 2}) == 1


def test_parallel_jobs_follow_a_cgroup_quota(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    (tmp_path / "cpu.max").write_text("100000 100000\n")  # one CPU's worth of time per period
    import lightning_lstm.runtime.threads as threads

    monkeypatch.setattr(threads, "DEFAULT_CGROUP_ROOT", tmp_path)
    monkeypatch.setattr(threads.available_cpus, "__defaults__", (tmp_path,))
    assert parallel_jobs(DoctorOptions(), {"accelerator": "cpu"}) == 1


def test_out_dir_defaults_to_the_run_name_under_the_root_dir():
    trainer = {"default_root_dir": "runs", "logger": {"class_path": "RunLogger", "init_args": {"name": "default"}}}
    assert out_dir(DoctorOptions(), trainer) == Path("runs/doctor/default")
    assert out_dir(DoctorOptions(out_dir="elsewhere"), trainer) == Path("elsewhere")
    assert out_dir(DoctorOptions(), {"logger": [trainer["logger"]]}) == Path("doctor/default")
    assert out_dir(DoctorOptions(), {"default_root_dir": "r", "logger": True}) == Path("r/doctor/lightning_logs")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("probe_epochs", 0),
        ("min_probe_steps", 0),
        ("jobs", 0),
        ("threads", 0),
        ("tolerance", 1.0),
        ("max_candidates", 0),
    ],
)
def test_bad_options_name_their_key(key: str, value: float):
    with pytest.raises(ValueError, match=f"doctor.{key} must be"):
        DoctorOptions(**{key: value})


def test_the_probe_budget_is_resolved_from_the_probes_own_data(tmp_path: Path, one_thread):
    cli = build_cli(tiny_fit_args(tmp_path, "--model.hidden_size=4"), run=False)
    data = TimeSeriesDataModule(**dict(cli.config["data"]))  # counted as the doctor did before the probe
    data.setup("fit")
    steps = math.ceil(len(data.window_index("train")) / data.hparams.batch_size)
    record = tmp_path / "budget.json"
    budget = ProbeBudget(min_probe_steps=4 * steps, max_epochs=None, record=str(record))
    cli.trainer.callbacks.append(budget)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)  # tiny_fit_args sets max_epochs=2: replaced by 4
    assert json.loads(record.read_text()) == {"epochs": 4, "steps_per_epoch": steps}
    assert ProbeBudget.read(record) == 4 and cli.trainer.current_epoch == 4 and cli.trainer.global_step == 4 * steps


def test_the_probe_budget_keeps_the_users_max_epochs_as_its_cap(tmp_path: Path):
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False)
    data = TimeSeriesDataModule(batch_size=512)
    trainer.strategy.connect(pl.LightningModule())
    trainer.datamodule = data  # what Trainer.fit sets before the setup hooks
    data.setup("fit")
    budget = ProbeBudget(min_probe_steps=300, max_epochs=5, record=str(tmp_path / "b.json"))
    budget.setup(trainer, trainer.lightning_module, "fit")
    assert trainer.max_epochs == 5 and ProbeBudget.read(tmp_path / "b.json") == 5

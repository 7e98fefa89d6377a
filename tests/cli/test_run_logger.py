"""Run folders: default_root_dir moves every output, a resumed fit continues its folder and step axis, evaluation
writes into the checkpoint's run folder, and checkpointing can be switched off (lightning_lstm/cli/run_logger.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_lstm.cli import build_cli
from tests.helpers import REPO

pytestmark = pytest.mark.usefixtures("one_thread")


def args(root: Path, *extra: str) -> list[str]:
    """A seconds-long fit on configs/default.yaml with only ``trainer.default_root_dir`` naming a folder."""
    return [
        "--config",
        str(REPO / "configs" / "default.yaml"),
        f"--trainer.default_root_dir={root}",
        "--trainer.max_epochs=2",
        "--trainer.limit_train_batches=4",
        "--trainer.log_every_n_steps=1",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--model.hidden_size=4",
        "--model.num_layers=1",
        *extra,
    ]


def steps(events_file: Path, tag: str) -> list[int]:
    events = EventAccumulator(str(events_file), size_guidance={"scalars": 0})
    events.Reload()
    return [event.step for event in events.Scalars(tag)]


@pytest.fixture(scope="module")
def resumed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-epoch fit, then ``--ckpt_path last`` to 4 epochs, from a working folder that must stay empty."""
    work = tmp_path_factory.mktemp("work")
    root = work / "elsewhere"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)
        build_cli(["fit", *args(root)])
        build_cli(["fit", *args(root, "--trainer.max_epochs=4", "--ckpt_path=last")])
        build_cli(["test", *args(root), f"--ckpt_path={root / 'default/version_0/checkpoints/last.ckpt'}"])
        build_cli(["predict", *args(root), f"--ckpt_path={root / 'default/version_0/checkpoints/last.ckpt'}"])
    assert sorted(p.name for p in work.iterdir()) == ["elsewhere"], "something was written outside default_root_dir"
    return root


def test_default_root_dir_holds_every_output_and_a_resumed_fit_continues_its_folder(resumed: Path):
    assert sorted(p.name for p in (resumed / "default").iterdir()) == ["version_0"]  # no version_1 for the resume
    run = resumed / "default" / "version_0"
    assert (run / "config.yaml").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    first, second = sorted(run.glob("events.out.tfevents.*"))  # one event file per fit, in the same folder
    before, after = steps(first, "train/loss_step"), steps(second, "train/loss_step")
    assert before and after and max(before) < min(after), (before, after)  # the step axis goes on, no restart
    whole = steps(run, "train/loss_step")  # TensorBoard's view of the folder: one curve
    assert whole == sorted(set(whole)) and whole == before + after
    assert len(steps(run, "val/loss")) == 4  # one point per epoch of 2 + 2 epochs
    assert len(steps(run, "train/loss_epoch")) == 4


def test_test_and_predict_write_into_the_checkpoints_run_folder(resumed: Path):
    run = resumed / "default" / "version_0"
    assert (run / "test" / "config.yaml").is_file() and steps(run / "test", "test/loss")
    assert (run / "predict" / "predictions.csv").is_file()
    assert "max_epochs: 4" in (run / "config.yaml").read_text()  # the resumed fit's config, not clobbered by test
    assert sorted(p.name for p in (resumed / "default").iterdir()) == ["version_0"]  # no version folder per command


def test_fit_without_checkpointing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    cli = build_cli(["fit", *args(tmp_path / "root", "--trainer.max_epochs=1", "--trainer.enable_checkpointing=false")])
    assert cli.trainer.state.finished and cli.trainer.checkpoint_callback is None
    run = tmp_path / "root" / "default" / "version_0"
    assert (run / "config.yaml").is_file() and not (run / "checkpoints").exists()


def test_the_progress_bar_redraws_every_20_steps_and_gives_way_to_a_bar_of_your_own(tmp_path: Path):
    from lightning.pytorch.callbacks import TQDMProgressBar

    def bar(*extra: str):
        cli = build_cli(["fit", *args(tmp_path / "root", "--trainer.max_epochs=1", *extra)])
        assert cli.trainer.state.finished
        return cli.trainer.progress_bar_callback

    shown = bar("--trainer.enable_progress_bar=true")
    assert type(shown) is TQDMProgressBar and shown.refresh_rate == 20  # the progress_bar group's default
    assert bar("--trainer.enable_progress_bar=true", "--progress_bar.refresh_rate=1").refresh_rate == 1
    assert bar() is None  # trainer.enable_progress_bar: false drops the group's bar (Lightning would refuse it)
    own = '{"class_path": "lightning.pytorch.callbacks.TQDMProgressBar", "init_args": {"refresh_rate": 5}}'
    assert bar("--trainer.enable_progress_bar=true", f"--trainer.callbacks+={own}").refresh_rate == 5  # one bar


def test_the_scalars_of_one_step_are_one_event_whoever_logs_them(tmp_path: Path):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    from lightning_lstm.cli.run_logger import RunLogger

    logger = RunLogger(save_dir=tmp_path, name="run", version=0, prefix="p")
    logger.log_metrics({"lr": 0.01}, step=3)  # the LR monitor, before the update
    logger.log_metrics({"loss": 1.5, "grad_norm": 2.0, "epoch": 0}, step=3)  # the step's scalars, after it
    logger.log_metrics({"loss": 5.0}, step=4)
    logger.log_metrics({"loss": 6.0}, step=4)  # a tag twice at one step: both values kept, as two events
    logger.save()
    logger.log_metrics({"loss": 7.0}, step=4)  # after save(): a new event
    logger.finalize("success")
    (events_file,) = (tmp_path / "run" / "version_0").glob("events.out.tfevents.*")
    with_values = [event for event in EventFileLoader(str(events_file)).Load() if event.summary.value]
    assert [(event.step, len(event.summary.value)) for event in with_values] == [(3, 4), (4, 1), (4, 1), (4, 1)]
    assert steps(events_file, "p-loss") == [3, 4, 4, 4] and steps(events_file, "p-grad_norm") == [3]
    assert steps(events_file, "p-lr") == [3]
    scalars = EventAccumulator(str(events_file))
    scalars.Reload()
    assert [s.value for s in scalars.Scalars("p-loss")] == [1.5, 5.0, 6.0, 7.0]


def test_save_flushes_at_most_every_few_seconds_and_finalize_always(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from lightning_lstm.cli import run_logger

    clock = [100.0]
    monkeypatch.setattr(run_logger.time, "monotonic", lambda: clock[0])
    logger = run_logger.RunLogger(save_dir=tmp_path, name="run", version=0)
    flushes = []
    monkeypatch.setattr(logger.experiment, "flush", lambda: flushes.append(clock[0]))
    logger.save()  # Lightning calls save() after every logging step
    clock[0] += run_logger.FLUSH_EVERY_S / 2
    logger.save()
    assert flushes == [100.0]
    clock[0] += run_logger.FLUSH_EVERY_S
    logger.save()
    assert len(flushes) == 2
    logger.finalize("success")  # the last events reach the file whatever the time
    assert len(flushes) >= 3 and (tmp_path / "run" / "version_0" / "hparams.yaml").is_file()

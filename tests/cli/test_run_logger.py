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

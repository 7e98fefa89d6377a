"""The CLI's checkpoint plumbing (lightning_lstm/cli/checkpoints.py): each subcommand checks its checkpoint once.

A given file is checked while the CLI parses it (before LightningCLI reads its hyperparameters); ``last`` once it is
resolved to a file. The data-compatibility check (the DataModule's ``load_state_dict``) runs once, in Lightning's
restore. ``--ckpt_path last`` with nothing to resume fails naming the folders searched, and a truncated ``last.ckpt``
is refused naming the intact checkpoints beside it; the user sees either as one line and exit status 2. About 20 s on
one core.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_lstm.cli import app, build_cli, checkpoints
from lightning_lstm.data.datamodule import TimeSeriesDataModule
from tests.helpers import REPO, clean_env, tiny_fit_args

pytestmark = pytest.mark.usefixtures("one_thread")
SHORT = ("--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1", "--trainer.limit_test_batches=1")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("checkpoints")
    build_cli(["fit", *tiny_fit_args(root, "--trainer.max_epochs=1", *SHORT)])
    return root


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Every call of check_readable and of the DataModule's load_state_dict, with the checked path."""
    calls: dict[str, list[str]] = {"readable": [], "data": []}
    real_check, real_load = checkpoints.check_readable, TimeSeriesDataModule.load_state_dict

    def check(path: str) -> None:
        calls["readable"].append(str(path))
        real_check(path)

    def load(self: TimeSeriesDataModule, state: dict) -> None:
        calls["data"].append("load_state_dict")
        real_load(self, state)

    monkeypatch.setattr(checkpoints, "check_readable", check)
    monkeypatch.setattr(app, "check_readable", check)
    monkeypatch.setattr(TimeSeriesDataModule, "load_state_dict", load)
    return calls


@pytest.mark.parametrize(
    ("subcommand", "which"),
    [("fit", "file"), ("fit", "last"), ("validate", "file"), ("test", "last")],
)
def test_each_subcommand_checks_its_checkpoint_once(fitted: Path, checks: dict, subcommand: str, which: str):
    last = fitted / "default" / "version_0" / "checkpoints" / "last.ckpt"
    # fit resumes into a folder of its own: by default it would continue the fixture's version_0 (run_logger.py)
    epochs = ["--trainer.max_epochs=2", "--trainer.logger.init_args.version=resumed"] if subcommand == "fit" else []
    ckpt = str(last) if which == "file" else "last"
    build_cli([subcommand, *tiny_fit_args(fitted, *SHORT, *epochs), f"--ckpt_path={ckpt}"])
    assert [Path(p).name for p in checks["readable"]] == ["last.ckpt"]
    assert checks["data"] == ["load_state_dict"]


def test_ckpt_path_last_with_nothing_to_resume_fails_naming_the_folders_searched(tmp_path: Path):
    with pytest.raises(FileNotFoundError) as raised:
        build_cli(["fit", *tiny_fit_args(tmp_path, *SHORT), "--ckpt_path=last"])
    message = str(raised.value)
    assert message.startswith("--ckpt_path last: no last.ckpt to resume from in ")
    assert str(tmp_path / "default" / "*" / "checkpoints") in message and "none of them exists yet" in message
    assert "Leave out --ckpt_path to train from scratch" in message
    assert not (tmp_path / "default").exists()  # nothing trained, no run folder


def test_a_truncated_last_ckpt_is_refused_naming_the_intact_checkpoints_beside_it(fitted: Path, tmp_path: Path):
    source = fitted / "default" / "version_0" / "checkpoints"
    folder = tmp_path / "default" / "version_0" / "checkpoints"
    shutil.copytree(source, folder)
    whole = (folder / "last.ckpt").read_bytes()
    (folder / "last.ckpt").write_bytes(whole[: len(whole) // 3])
    (best,) = folder.glob("best-*.ckpt")
    with pytest.raises(ValueError) as raised:
        build_cli(["fit", *tiny_fit_args(tmp_path, *SHORT), "--ckpt_path=last"])
    message = str(raised.value)
    assert message.startswith(f"ckpt_path: {folder / 'last.ckpt'} is not a readable checkpoint")
    assert f"intact checkpoints beside it: {best.name} (global step 2)" in message, message


def test_the_user_sees_one_line_and_exit_status_2(tmp_path: Path):
    command = [sys.executable, "-m", "lightning_lstm", "fit", *tiny_fit_args(tmp_path, *SHORT), "--ckpt_path=last"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=clean_env())
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = [line for line in result.stderr.splitlines() if "error:" in line]
    assert line.startswith("python -m lightning_lstm: error: --ckpt_path last: no last.ckpt to resume from in "), line
    assert "Traceback" not in result.stderr

"""The CLI's checkpoint plumbing (lightning_lstm/cli/checkpoints.py): each subcommand checks its checkpoint once.

A given file is checked while the CLI parses it (before LightningCLI reads its hyperparameters); ``last`` once it is
resolved to a file. The data-compatibility check (the DataModule's ``load_state_dict``) runs once, in Lightning's
restore. About 10 s on one core.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_lstm.cli import app, checkpoints, main
from lightning_lstm.data.datamodule import TimeSeriesDataModule
from tests.helpers import tiny_fit_args

pytestmark = pytest.mark.usefixtures("one_thread")
SHORT = ("--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1", "--trainer.limit_test_batches=1")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("checkpoints")
    main(["fit", *tiny_fit_args(root, "--trainer.max_epochs=1", *SHORT)])
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
    epochs = ["--trainer.max_epochs=2"] if subcommand == "fit" else []
    ckpt = str(last) if which == "file" else "last"
    main([subcommand, *tiny_fit_args(fitted, *SHORT, *epochs), f"--ckpt_path={ckpt}"])
    assert [Path(p).name for p in checks["readable"]] == ["last.ckpt"]
    assert checks["data"] == ["load_state_dict"]

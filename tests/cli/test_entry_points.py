"""The installed ``lightning-lstm`` script exits 0 on success and 2 with one message on a user error; bugs keep their
traceback (lightning_lstm/cli/errors.py)."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_lstm.cli import build_cli
from lightning_lstm.cli.errors import exit_status, is_user_error, report_user_error
from lightning_lstm.data.datamodule import TimeSeriesDataModule
from tests.helpers import REPO, clean_env, tiny_fit_args

SCRIPT = Path(sys.executable).parent / "lightning-lstm"


def run_script(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=tmp_path,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_console_script_exits_0_after_a_fit_and_prints_no_object(tmp_path: Path):
    assert SCRIPT.is_file(), f"{SCRIPT} is not installed: make install"
    result = run_script(tmp_path, "fit", *tiny_fit_args(tmp_path, "--trainer.fast_dev_run=1"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "object at 0x" not in result.stdout + result.stderr


@pytest.mark.slow  # ~11 s: make test stays under 5 minutes; .ci/run runs the slow tier after it
def test_a_user_error_prints_one_message_and_exits_2_and_the_variable_shows_the_traceback(tmp_path: Path):
    args = ["fit", "--config", str(REPO / "configs/default.yaml"), "--data.lookback=0"]
    result = run_script(tmp_path, *args)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.endswith(
        "lightning-lstm: error: data.lookback must be an integer >= 1, got 0\n"
        "(set LIGHTNING_LSTM_TRACEBACK=1 to see the full traceback)\n"
    ), result.stderr[-2000:]
    shown = run_script(tmp_path, *args, LIGHTNING_LSTM_TRACEBACK="1")
    assert shown.returncode == 2
    assert "Traceback (most recent call last)" in shown.stderr and "ValueError: data.lookback" in shown.stderr


def test_a_missing_data_file_is_a_user_error_through_python_m(tmp_path: Path):
    missing = tmp_path / "nope.csv"
    result = subprocess.run(
        [sys.executable, "-m", "lightning_lstm", "fit", *tiny_fit_args(tmp_path), f"--data.path={missing}"],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    last_lines = result.stderr.strip().splitlines()[-2:]
    assert last_lines[0].startswith("python -m lightning_lstm: error: data.path") and str(missing) in last_lines[0]
    assert "Traceback" not in result.stderr


def raise_in_numpy(args):
    np.zeros(2).reshape(3)


def test_user_errors_are_the_packages_own_checks_and_the_users_files():
    with pytest.raises(ValueError) as check:
        TimeSeriesDataModule(lookback=0)
    assert is_user_error(check.value)
    with pytest.raises(FileNotFoundError) as missing:
        open("/nonexistent/data.csv")
    assert is_user_error(missing.value)
    with pytest.raises(ValueError) as library:
        raise_in_numpy(None)
    assert not is_user_error(library.value)  # a ValueError from inside a library is a bug here
    with pytest.raises(RuntimeError) as torch_error:
        torch.zeros(2).view(3)
    assert not is_user_error(torch_error.value)


def test_a_bug_keeps_its_traceback(capsys: pytest.CaptureFixture):
    with pytest.raises(ValueError, match="cannot reshape"):
        exit_status(raise_in_numpy)
    assert exit_status(lambda args: None) == 0
    assert capsys.readouterr().err == ""


def test_only_rank_zero_prints(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    error = ValueError("data.lookback must be an integer >= 1, got 0")
    monkeypatch.setenv("RANK", "1")
    assert report_user_error(error, "lightning-lstm") == 2
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    assert report_user_error(error, "lightning-lstm") == 2
    assert "error: data.lookback" in capsys.readouterr().err


def test_help_describes_this_tool_and_lists_doctor_beside_the_lightning_subcommands(tmp_path: Path):
    result = run_script(tmp_path, "--help")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "{fit,validate,test,predict,doctor}" in result.stdout
    assert "Train LSTM regressors on messy time series" in result.stdout
    assert "Lightning Trainer command line tool" not in result.stdout
    listed = [line.split()[0] for line in result.stdout.splitlines() if line[:4] == "    " and line[4:5].isalpha()]
    assert listed == ["fit", "validate", "test", "predict", "doctor"]


def test_version_prints_the_installed_version_and_exits_0(tmp_path: Path):
    result = run_script(tmp_path, "--version")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout == f"lightning-lstm {version('lightning-lstm')}\n"


def test_doctor_help_documents_fits_options_and_the_doctors(tmp_path: Path):
    result = run_script(tmp_path, "doctor", "--help")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("usage: lightning-lstm doctor ")
    for option in ("--data.path", "--trainer.max_epochs", "--ckpt_path", "--doctor.out_dir", "--doctor.jobs"):
        assert f"  {option} " in result.stdout, option


def test_a_doctor_user_error_prints_one_message_and_exits_2(tmp_path: Path):
    result = run_script(tmp_path, "doctor", *tiny_fit_args(tmp_path), "--data.val_fraction=0")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert result.stderr.endswith(
        "lightning-lstm: error: doctor needs a validation split to judge remedies: set data.val_fraction > 0\n"
        "(set LIGHTNING_LSTM_TRACEBACK=1 to see the full traceback)\n"
    ), result.stderr[-2000:]
    assert not (tmp_path / "doctor").exists()


def test_the_cli_never_imports_the_doctor():
    code = "import sys, lightning_lstm.cli; print(sorted(m for m in sys.modules if 'lightning_lstm.doctor' in m))"
    done = subprocess.run([sys.executable, "-c", code], env=clean_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"


def test_the_entry_point_runs_a_listed_command_only_through_main():
    with pytest.raises(ValueError, match="doctor runs through lightning_lstm.__main__.main"):
        build_cli(["doctor"], commands={"doctor": "listed"})

"""Every YAML under configs/ runs through the CLI as its header says: one fast_dev_run step of the documented command.

Each file's header holds the exact command that runs it (``#   python -m lightning_lstm fit --config ...``, with
``\\`` continuations): an overlay names its base there (remedies: configs/default.yaml and the steps before them). The
test runs that command with ``--trainer.fast_dev_run=1`` in a temporary folder, so a broken key, a wrong layer order
or a stale command in a header fails here.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_lstm.cli import build_cli
from tests.helpers import ELECTRICITY_HALFHOURLY, FLIGHTS_PANEL, GLUCOSE_EXCERPT, REPO, clean_env

CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))
PREFIX = "python -m lightning_lstm fit "
# Values that replace (or are added to) a documented command so that it runs here. glucose.yaml needs a CGM file (the
# test excerpt), electricity_hourly.yaml the fixture's absolute path, panel_hourly.yaml the panel's; ddp.yaml asks for
# every GPU: its laptop form (two CPU processes with gloo), as its header suggests.
SUBSTITUTE = {
    "glucose.yaml": {"--data.path": str(GLUCOSE_EXCERPT)},
    "electricity_hourly.yaml": {"--data.path": str(ELECTRICITY_HALFHOURLY)},
    "panel_hourly.yaml": {"--data.path": str(FLIGHTS_PANEL)},
    "ddp.yaml": {"--trainer.accelerator": "cpu", "--trainer.devices": "2"},
}
MULTI_PROCESS = {"ddp.yaml"}  # Lightning starts the other process by re-running the command: a real subprocess


def documented_command(config: Path) -> list[str]:
    """The arguments after ``fit`` of the first ``python -m lightning_lstm fit`` command in the leading comment."""
    header = []
    for line in config.read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line.lstrip("#").strip())
    text = "\n".join(header).replace("\\\n", " ")  # join continuation lines
    commands = [line for line in text.splitlines() if line.startswith(PREFIX)]
    assert commands, f"{config.relative_to(REPO)}: its header comment names no '{PREFIX}...' command"
    return shlex.split(commands[0].removeprefix(PREFIX))


def runnable(args: list[str], substitute: dict[str, str]) -> list[str]:
    """``args`` with repository paths made absolute and the ``substitute`` values set (replaced where present)."""
    out, todo = [], dict(substitute)
    tokens = iter(args)
    for token in tokens:
        key, eq, value = token.partition("=")
        if not key.startswith("--"):
            raise AssertionError(f"unexpected positional argument {token!r} in a documented command")
        value = value if eq else next(tokens)
        value = todo.pop(key, value)
        if key == "--config":
            assert (REPO / value).is_file(), f"the documented command names {value}, which does not exist"
            value = str(REPO / value)
        out.append(f"{key}={value}")
    return out + [f"{key}={value}" for key, value in todo.items()]


@pytest.mark.parametrize(
    "config",
    [pytest.param(c, marks=pytest.mark.slow) if c.name in MULTI_PROCESS else c for c in CONFIGS],
    ids=lambda p: str(p.relative_to(REPO / "configs")),
)
def test_config_runs_as_documented(config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_thread):
    documented = documented_command(config)
    relative = str(config.relative_to(REPO))
    layers = [documented[i + 1] for i, token in enumerate(documented) if token == "--config"]
    assert layers and layers[-1] == relative, f"{relative}: its header command must end its --config list with itself"
    args = [
        *runnable(documented, SUBSTITUTE.get(config.name, {})),
        "--trainer.fast_dev_run=1",
        f"--trainer.default_root_dir={tmp_path}",
        f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
    ]
    if config.name in MULTI_PROCESS:
        result = subprocess.run(
            [sys.executable, "-m", "lightning_lstm", "fit", *args],
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"{relative}: {shlex.join(args)}\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
    else:
        monkeypatch.chdir(tmp_path)  # nothing lands in the repository (runs/, lightning_logs/)
        cli = build_cli(["fit", *args])
        assert cli.trainer.state.finished, f"{relative}: fit did not finish"
        assert cli.trainer.global_step == 1

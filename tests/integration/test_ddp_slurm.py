"""SLURM without a cluster: the variables srun sets, a fake ``srun`` and ``scontrol``, SIGUSR1 for the time limit.

Lightning reads the job from ``SLURM_*`` variables (``SLURMEnvironment``); on SIGUSR1 it writes
``<default_root_dir>/hpc_ckpt_<n>.ckpt`` and calls ``scontrol requeue <job id>``; a later ``fit`` under SLURM with the
same ``default_root_dir`` resumes from the newest ``hpc_ckpt``. Every launch has a timeout: a hang fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities import rank_zero
from lightning_utilities.core import rank_zero as utils_rank_zero

from lightning_lstm.cli import build_cli
from tests.helpers import REPO
from tests.integration.test_ddp import clean_env, cli, cli_args, launch, run_args, write_series


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slurm_env(job_id: str, tasks: int, **extra: str) -> dict[str, str]:
    """What ``sbatch --nodes=1 --ntasks-per-node=<tasks>`` puts in the environment; srun adds each task's ids."""
    return {
        "SLURM_JOB_ID": job_id,
        "SLURM_JOB_NAME": "lightning-lstm",
        "SLURM_NNODES": "1",
        "SLURM_NTASKS": str(tasks),
        "SLURM_NTASKS_PER_NODE": str(tasks),
        "SLURM_NODELIST": "localhost",
        "SLURM_CPUS_PER_TASK": "1",
        "MASTER_PORT": str(free_port()),
        **extra,
    }


def fake_command(folder: Path, name: str, body: str) -> None:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)


def test_srun_variables_select_the_slurm_environment(monkeypatch, tmp_path: Path):
    for key, value in slurm_env(
        "4242", 2, SLURM_NODELIST="gpu[07-08]", SLURM_PROCID="1", SLURM_LOCALID="1", SLURM_NODEID="0"
    ).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MASTER_ADDR", "unset")
    monkeypatch.delenv("MASTER_ADDR")  # SLURMEnvironment sets it; monkeypatch removes it again afterwards
    monkeypatch.setattr(rank_zero.rank_zero_only, "rank", 0)  # building the Trainer sets rank 1 process-wide
    monkeypatch.setattr(utils_rank_zero.rank_zero_only, "rank", 0)
    csv = write_series(tmp_path / "series.csv")
    trainer = build_cli(cli_args(tmp_path, csv), run=False).trainer  # run=False: no subcommand, nothing started
    environment = trainer.strategy.cluster_environment
    assert isinstance(environment, SLURMEnvironment) and environment.auto_requeue
    assert (trainer.world_size, trainer.global_rank, trainer.local_rank, trainer.node_rank) == (2, 1, 1, 0)
    assert environment.main_address == "gpu07"


def test_tasks_per_node_unequal_to_devices_is_a_clear_error_not_a_hang(tmp_path: Path):
    csv = write_series(tmp_path / "series.csv")
    env = clean_env(**slurm_env("4242", 2, SLURM_PROCID="0", SLURM_LOCALID="0", SLURM_NODEID="0"))
    result = launch(
        cli("fit", *cli_args(tmp_path, csv, "--trainer.devices=1")), cwd=tmp_path, env=env, timeout=180, check=False
    )
    assert result.returncode != 0
    assert "`--ntasks-per-node=2` does not match. HINT: Set `devices=2`" in result.stdout, result.stdout[-3000:]


def test_sbatch_script_trains_on_two_tasks_started_by_srun(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    # srun starts one copy of the command per task, each with its task ids, and fails if any task fails.
    fake_command(
        bin_dir,
        "srun",
        """while [[ $1 == -* ]]; do shift; done
pids=()
for ((i = 0; i < SLURM_NTASKS_PER_NODE; i++)); do
    SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_NODEID=0 "$@" & pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
""",
    )
    csv = write_series(tmp_path / "series.csv")
    env = clean_env(**slurm_env("4242", 2), PYTHON=sys.executable, RUN_ROOT=str(tmp_path / "root"))
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    args = run_args(tmp_path / "logs", csv, "--trainer.max_epochs=1")
    result = launch(["bash", "scripts/slurm/train.sbatch", *args], cwd=REPO, env=env)
    assert "SLURM auto-requeueing enabled" in result.stdout and "MEMBER: 2/2" in result.stdout
    run = tmp_path / "logs" / "default" / "slurm-4242"  # named by the job id, so a requeued job writes here again
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "config.yaml").is_file()
    assert sorted(p.name for p in (tmp_path / "logs" / "default").iterdir()) == ["slurm-4242"]


def wait_for(path: Path, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"the run ended before {path} appeared:\n{process.stdout.read()[-4000:]}")
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"{path} did not appear within {timeout} s")
        time.sleep(0.2)


@pytest.mark.slow
def test_requeue_signal_writes_the_hpc_checkpoint_and_the_next_fit_resumes_from_it(tmp_path: Path):
    bin_dir, root, logs = tmp_path / "bin", tmp_path / "root", tmp_path / "logs"
    fake_command(bin_dir, "scontrol", f'echo "$@" > {tmp_path / "scontrol.args"}\n')
    env = clean_env(**slurm_env("4243", 1, SLURM_PROCID="0", SLURM_LOCALID="0", SLURM_NODEID="0"))
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    csv = write_series(tmp_path / "series.csv")

    def fit(max_epochs: int) -> list[str]:  # what scripts/slurm/train.sbatch runs, on one task
        return cli(
            "fit",
            *cli_args(
                logs,
                csv,
                "--trainer.devices=1",
                f"--trainer.max_epochs={max_epochs}",
                "--trainer.limit_train_batches=2",
                "--trainer.limit_val_batches=1",
                f"--trainer.default_root_dir={root}",
                "--trainer.logger.init_args.version=slurm-4243",
            ),
        )

    process = subprocess.Popen(
        fit(1000),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for(logs / "default" / "slurm-4243" / "checkpoints" / "last.ckpt", process, timeout=300)  # training
        process.send_signal(signal.SIGUSR1)  # what --signal=SIGUSR1@90 sends 90 s before the time limit
        wait_for(tmp_path / "scontrol.args", process, timeout=120)  # written after the checkpoint
        process.send_signal(signal.SIGTERM)  # scontrol requeue ends the job: SIGTERM, later SIGKILL
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert (tmp_path / "scontrol.args").read_text().split() == ["requeue", "4243"]
    hpc = root / "hpc_ckpt_1.ckpt"
    saved = torch.load(hpc, map_location="cpu", weights_only=True)
    assert saved["global_step"] >= 2 and "TimeSeriesDataModule" in saved

    # The requeued job: the same command and job id, no --ckpt_path.
    result = launch(fit(saved["epoch"] + 2), cwd=tmp_path, env=env)
    assert f"Restoring states from the checkpoint path at {hpc}" in result.stdout, result.stdout[-3000:]
    last = torch.load(
        logs / "default" / "slurm-4243" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True
    )
    assert last["global_step"] > saved["global_step"]

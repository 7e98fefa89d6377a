"""SIGKILL during the write of a large checkpoint: the old complete file or the new one, never a partial one.

The real command line fits a 2 x 512 LSTM (a 38 MB checkpoint: weights and Adam moments) and writes ``best-*.ckpt`` and
``last.ckpt`` after every optimizer step. The test watches the checkpoint folder; whenever a write is in progress it
freezes the run (SIGSTOP), so what it sees is what a kill would leave, and kills it (SIGKILL) only if the frozen
write is partial; otherwise it lets the run go on (SIGCONT) to the next write. The kill therefore lands mid-write
every time, without racing the writer. Then:

- every file under a final name (``*.ckpt``) loads, and ``last.ckpt`` holds the previous step;
- the one partial file left is the temporary ``*.writing-*.tmp`` beside them, and the system temp folder (``TMPDIR``,
  where Lightning's own writer stages its copy) is empty;
- ``fit --ckpt_path last`` removes the temporary file and resumes from that ``last.ckpt``.

With the run folder on the same filesystem as ``TMPDIR`` and on another one (a tmpfs mount: the test runs as root,
elsewhere it skips and says why), killed while writing ``last.ckpt`` and while writing ``best-*.ckpt``. The last test
is the issue's report, reproduced: with Lightning's own ``TorchCheckpointIO`` the run folder on another filesystem,
killed while the staged file is copied over, leaves an unreadable file under a final name and its full copy in
``TMPDIR``, which is what these tests catch in a writer that is not atomic. A CLI subprocess each (~6 s on a quiet
core); all but the first case are marked slow.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lightning_lstm.checkpoint_io import is_temporary
from tests.helpers import REPO, clean_env, tiny_fit_args, tmpfs, write_weekly_sine

pytestmark = pytest.mark.usefixtures("one_thread")

STEPS_PER_EPOCH, EPOCHS = 6, 2  # 12 steps, 2 checkpoint writes each: 24 chances to freeze one mid-way
LIGHTNING_WRITER = json.dumps({"class_path": "lightning.fabric.plugins.io.torch_io.TorchCheckpointIO"})


def large_fit(save_dir: Path, csv: Path, *extra: str) -> list[str]:
    return [
        "fit",
        *tiny_fit_args(
            save_dir,
            f"--data.path={csv}",
            "--data.target_columns=[value]",
            "--data.lookback=10",
            "--data.horizon=2",
            "--data.batch_size=8",
            "--data.window_norm=none",
            "--model.hidden_size=512",  # 3.2 M weights, twice as many Adam moments: 38 MB per checkpoint
            "--model.num_layers=2",
            f"--trainer.max_epochs={EPOCHS}",
            f"--trainer.limit_train_batches={STEPS_PER_EPOCH}",
            "--trainer.limit_val_batches=1",
            "--forecast_plot.every_n_epochs=0",
            "--checkpoint.every_n_train_steps=1",
            "--checkpoint.monitor=null",
            *extra,
        ),
    ]


def listing(*folders: Path) -> dict[str, int]:
    """Every file in ``folders`` (recursively) with its size."""
    return {str(p): p.stat().st_size for folder in folders if folder.exists() for p in folder.rglob("*") if p.is_file()}


def writing(name: str):
    """``when`` for :func:`kill_mid_write`: the temporary file of ``name`` (``last`` or ``best``) is partly written."""

    def partial(frozen: dict[str, int], full: int, temp_dir: Path) -> bool:
        return any(is_temporary(p) and Path(p).name.startswith(name) and 0 < size < full for p, size in frozen.items())

    return partial


def copying_across(frozen: dict[str, int], full: int, temp_dir: Path) -> bool:
    """Lightning's writer has staged the file in the system temp folder and is copying it under its final name."""
    staged = any(temp_dir in Path(p).parents and size == full for p, size in frozen.items())
    return staged and any(p.endswith(".ckpt") and 0 < size < 0.9 * full for p, size in frozen.items())


def kill_mid_write(save_dir: Path, temp_dir: Path, csv: Path, *extra: str, when) -> dict[str, int]:
    """Run the fit in a subprocess; SIGKILL it frozen in a state where ``when`` holds; return that state."""
    folder = save_dir / "default" / "version_0" / "checkpoints"
    complete = folder / "last.ckpt"
    log = temp_dir.parent / f"{save_dir.name}.log"
    with log.open("w") as output:
        run = subprocess.Popen(
            [sys.executable, "-m", "lightning_lstm", *large_fit(save_dir, csv, *extra)],
            cwd=REPO,
            env=clean_env(TMPDIR=str(temp_dir)),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 240
        while True:
            assert run.poll() is None, f"the run ended before a kill landed mid-write:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "no partial checkpoint write seen in 240 s"
            if complete.exists() and (any(folder.glob("*.tmp")) or any(temp_dir.iterdir())):
                os.kill(run.pid, signal.SIGSTOP)
                _, status = os.waitpid(run.pid, os.WUNTRACED)  # stopped: the write syscall under way has returned
                assert os.WIFSTOPPED(status), status
                frozen = listing(folder, temp_dir)
                if when(frozen, complete.stat().st_size, temp_dir):
                    run.send_signal(signal.SIGKILL)
                    assert run.wait(timeout=60) == -signal.SIGKILL
                    return frozen
                os.kill(run.pid, signal.SIGCONT)
            time.sleep(0.001)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


def step(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


@pytest.mark.parametrize(
    ("where", "name"),
    [
        pytest.param("another filesystem", "last", id="tmpfs-last"),  # the case: in the fast tier
        pytest.param("same filesystem", "last", id="same-fs-last", marks=pytest.mark.slow),
        pytest.param("another filesystem", "best", id="tmpfs-best", marks=pytest.mark.slow),
    ],
)
def test_sigkill_mid_write_leaves_only_complete_checkpoints_and_the_run_resumes(tmp_path, where, name) -> None:
    temp_dir = tmp_path / "system_tmp"
    temp_dir.mkdir()
    csv = write_weekly_sine(tmp_path / "series.csv", steps=300)
    runs = tmp_path / "runs"
    with tmpfs(runs, size="256m") if where == "another filesystem" else _plain_folder(runs):
        frozen = kill_mid_write(runs, temp_dir, csv, when=writing(name))
        folder = runs / "default" / "version_0" / "checkpoints"
        left = listing(folder, temp_dir)

        assert left == frozen  # the kill changed nothing the frozen run had written
        assert not any(temp_dir.iterdir())
        (partial,) = [Path(p) for p in left if is_temporary(p)]
        assert partial.parent == folder and partial.name.startswith(name) and not partial.name.endswith(".ckpt")
        checkpoints = {p.name: step(p) for p in folder.glob("*.ckpt")}  # every final name loads
        last = checkpoints["last.ckpt"]
        assert 1 <= last < STEPS_PER_EPOCH * EPOCHS
        best_after = {  # killed while writing last.ckpt: the new best is complete; while writing best: the old one
            "last": f"best-epoch{last // STEPS_PER_EPOCH:03d}-step{last + 1}.ckpt",
            "best": f"best-epoch{(last - 1) // STEPS_PER_EPOCH:03d}-step{last}.ckpt",
        }[name]
        assert set(checkpoints) == {"last.ckpt", best_after}, checkpoints
        print(f"\n{where}, killed writing {name}: left {left}; global steps {checkpoints}")

        from lightning_lstm.cli import build_cli

        resumed = build_cli(large_fit(runs, csv, "--ckpt_path=last"))
        assert not partial.exists()  # removed at the start of the resumed run
        assert resumed.trainer.global_step == STEPS_PER_EPOCH * EPOCHS
        assert step(runs / "default" / "version_0" / "checkpoints" / "last.ckpt") == STEPS_PER_EPOCH * EPOCHS
        assert not any(temp_dir.iterdir())


@pytest.mark.slow
def test_lightnings_own_writer_killed_mid_copy_leaves_a_partial_final_file_and_a_stray_in_tmp(tmp_path) -> None:
    temp_dir = tmp_path / "system_tmp"
    temp_dir.mkdir()
    csv = write_weekly_sine(tmp_path / "series.csv", steps=300)
    with tmpfs(tmp_path / "runs", size="256m") as runs:
        frozen = kill_mid_write(runs, temp_dir, csv, f"--trainer.plugins={LIGHTNING_WRITER}", when=copying_across)
        left = listing(runs / "default" / "version_0" / "checkpoints", temp_dir)
        assert left == frozen
        assert any(temp_dir in Path(p).parents for p in left)  # the "85 MB temporary file stayed in /tmp"
        broken = []
        for path in (Path(p) for p in left if p.endswith(".ckpt")):
            try:
                step(path)
            except Exception:  # noqa: BLE001 - a truncated zip fails in several ways
                broken.append(path.name)
        assert broken, left  # a partial file under its final name: what AtomicCheckpointIO prevents
        print(f"\nLightning's writer: left {left}; unreadable {broken}")


class _plain_folder:
    """``with`` for the same-filesystem case: the run folder is a plain folder beside TMPDIR."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None

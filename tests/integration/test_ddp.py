"""DDP on two CPU processes (gloo), started the way users start them: every window once, metrics as on one process.

One two-process ``fit`` (Lightning's own launcher) is shared; ``test`` runs through ``scripts/torchrun.sh``, ``predict``
and ``validate`` through Lightning's launcher, each compared with a one-process run of the same checkpoint. Every
launch has a timeout and kills all its ranks on expiry, so a hang fails instead of blocking.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_lstm import distributed
from lightning_lstm.cli import build_cli
from lightning_lstm.data.statistics import FittedStatistics, fit_on_rank_zero
from tests.helpers import REPO, clean_env, write_weekly_sine

LAUNCH_TIMEOUT = 300  # seconds per launch: generous for a loaded machine, short of a hang
# Two ranks sum the same float32 values in another order, so metrics equal a one-process run up to rounding: 1e-5
# relative, and 1e-5 absolute for R2, whose denominator is a difference of two sums of order 1e4 on this series.
RTOL, ATOL = 1e-5, 1e-5
BATCH = 29  # 59 test windows: rank 0 gets 30 (two batches), rank 1 gets 29 (one batch): uneven on purpose


# -- helpers shared with test_ddp_slurm.py ---------------------------------------------------------------------------
def write_series(path: Path) -> Path:
    """400 daily steps of a noisy weekly sine (``value``) and a constant column (``flat``)."""
    return write_weekly_sine(path, steps=400, flat_column=True)


def cli_args(root: Path, csv: Path, *extra: str, ddp: bool = True) -> list[str]:
    """A seconds-long run of the default config (plus the DDP overlay on two processes) on ``csv``, logs in ``root``."""
    configs = ["--config", str(REPO / "configs" / "default.yaml")]
    if ddp:
        configs += ["--config", str(REPO / "configs" / "ddp.yaml"), "--trainer.devices=2"]
    return [*configs, *run_args(root, csv, *extra)]


def run_args(root: Path, csv: Path, *extra: str) -> list[str]:
    """Overrides after the configs: CPU, tiny model, ``csv`` (271 train, 59 val, 59 test windows), logs in ``root``."""
    return [
        "--trainer.accelerator=cpu",
        "--trainer.max_epochs=2",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--trainer.logger.init_args.save_dir={root}",
        "--model.hidden_size=4",
        "--model.num_layers=1",
        f"--data.path={csv}",
        "--data.target_columns=[value]",
        "--data.feature_columns=[value, flat]",
        "--data.lookback=8",
        "--data.horizon=2",
        f"--data.batch_size={BATCH}",
        "--data.window_norm=none",
        "--forecast_plot.every_n_epochs=0",
        *extra,
    ]


def launch(
    command: list[str],
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = LAUNCH_TIMEOUT,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Run ``command`` in its own process group; on timeout kill the whole group (every rank) and fail."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env or clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"{' '.join(command[:6])} ... hung for {timeout} s:\n{output[-4000:]}")
    result = subprocess.CompletedProcess(command, process.returncode, output, "")
    if check:
        assert result.returncode == 0, output[-6000:]
    return result


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "lightning_lstm", *args]


def scalars(run_dir: Path) -> dict[str, float]:
    """The last value of every scalar in a TensorBoard run folder."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: events.Scalars(tag)[-1].value for tag in events.Tags()["scalars"]}


def only_run(root: Path) -> Path:
    runs = sorted(root.glob("default/*/"))
    assert len(runs) == 1, f"expected one run folder (rank zero's) in {root}, found {runs}"
    return runs[0]


def assert_same_metrics(ddp: dict[str, float], single: dict[str, float], prefix: str) -> None:
    names = sorted(k for k in single if k.startswith(prefix))
    assert len(names) >= 5, single
    for name in names:
        assert ddp[name] == pytest.approx(single[name], rel=RTOL, abs=ATOL), (
            f"{name}: {ddp[name]} on two processes, {single[name]} on one"
            + (
                ". self.log(sync_dist=True) averages wrongly when ranks hold unequal window counts (Lightning "
                "#21859); log it from a MeanMetric as val/loss does"
                if name.endswith("/loss")
                else ""
            )
        )


# -- statistics fitted once, without processes (the shards: tests/data/test_loaders.py) ----------------------------
class TwoRanks:
    """``torch.distributed`` for two ranks in one process: what rank 0 broadcasts, rank 1 receives."""

    def __init__(self) -> None:
        self.rank, self.sent = 0, None

    def is_available(self) -> bool:
        return True

    def is_initialized(self) -> bool:
        return True

    def get_world_size(self) -> int:
        return 2

    def get_rank(self) -> int:
        return self.rank

    def broadcast_object_list(self, objects: list, src: int) -> None:
        if self.rank == src:
            self.sent = list(objects)
        else:
            objects[:] = self.sent

    def all_gather_object(self, objects: list, obj: object) -> None:
        objects[:] = [obj, ("rank 1's", obj)] if self.rank == 0 else [("rank 0's", obj), obj]


def test_statistics_are_fitted_on_rank_zero_only_and_reach_every_rank(monkeypatch):
    stats = FittedStatistics(
        ["s"], ["v"], np.array([[-1.0]]), np.array([[1.0]]), np.array([[10.0]]), np.array([[2.0]]), {"v": 3}
    )
    calls = []
    assert fit_on_rank_zero(lambda: calls.append(1) or stats) is stats and calls == [1]  # one process: just fit
    ranks = TwoRanks()
    monkeypatch.setattr(distributed, "dist", ranks)
    assert fit_on_rank_zero(lambda: stats) is not None
    ranks.rank = 1
    received = fit_on_rank_zero(lambda: pytest.fail("rank 1 must not fit"))
    for name in ("clip_low", "clip_high", "center", "scale"):
        np.testing.assert_array_equal(getattr(received, name), getattr(stats, name))
    assert (received.series_names, received.columns, received.clipped) == (["s"], ["v"], {"v": 3})

    def failing_fit() -> FittedStatistics:
        raise ValueError("column 'v' is all missing on the training span")

    ranks.rank = 0
    with pytest.raises(ValueError, match="all missing"):
        fit_on_rank_zero(failing_fit)
    ranks.rank = 1  # does not wait for statistics that never come
    with pytest.raises(RuntimeError, match="rank 0 could not fit .*ValueError: column 'v' is all missing"):
        fit_on_rank_zero(lambda: pytest.fail("rank 1 must not fit"))


def test_gather_objects_gives_every_rank_all_objects_in_rank_order(monkeypatch):
    assert distributed.gather_objects({"spikes": 2}) == [{"spikes": 2}]  # one process: just its own
    monkeypatch.setattr(distributed, "dist", TwoRanks())
    assert distributed.gather_objects({"spikes": 2}) == [{"spikes": 2}, ("rank 1's", {"spikes": 2})]


# -- real processes --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ddp_fit(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One two-process fit (``python -m lightning_lstm fit ... --trainer.devices=2``, Lightning starts rank 1)."""
    root = tmp_path_factory.mktemp("ddp")
    csv = write_series(root / "series.csv")
    result = launch(cli("fit", *cli_args(root / "fit", csv)), cwd=root)
    run = only_run(root / "fit")
    return SimpleNamespace(root=root, csv=csv, output=result.stdout, run=run, ckpt=run / "checkpoints" / "last.ckpt")


@pytest.mark.slow
def test_ddp_fit_shards_windows_fits_statistics_once_and_writes_once(ddp_fit):
    assert "Starting with 2 processes" in ddp_fit.output
    # 271 training windows: 136 per rank = 5 batches of 29 per epoch (271 unsharded would take 10, double-sharded 3).
    checkpoint = torch.load(ddp_fit.ckpt, map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 2 * 5
    # Only rank zero fits the statistics (the constant column warns there alone); rank 1 received them and trained.
    assert ddp_fit.output.count("column 'flat' is constant on the training span") == 1, ddp_fit.output[-3000:]
    assert checkpoint["TimeSeriesDataModule"]["statistics"]["center"][0].tolist() == pytest.approx([10.0, 1.0], abs=0.1)
    # One run folder (checked by only_run), one config, the checkpoints of rank zero.
    names = sorted(p.name for p in (ddp_fit.run / "checkpoints").iterdir())
    assert "last.ckpt" in names and sum(n.startswith("best-") for n in names) == 1, names
    assert (ddp_fit.run / "config.yaml").is_file()
    # A spike on one rank seen by all ranks: the spike callback's own DDP test (tests/test_spike_callback_ddp.py).


@pytest.fixture(scope="module")
def single_validate(ddp_fit) -> dict[str, float]:
    """``validate`` of the fit's last checkpoint on one process."""
    root = ddp_fit.root / "validate-single"
    build_cli(["validate", *cli_args(root, ddp_fit.csv, ddp=False), f"--ckpt_path={ddp_fit.ckpt}"])
    return scalars(only_run(root))


@pytest.mark.slow
def test_ddp_validation_during_fit_equals_one_process(ddp_fit, single_validate):
    # The fit's last validation ran on the final weights, which last.ckpt holds; its 59 windows were split 30 / 29.
    assert_same_metrics(scalars(ddp_fit.run), single_validate, "val/")


@pytest.mark.slow
def test_ddp_validate_equals_one_process(ddp_fit, single_validate, tmp_path: Path):
    launch(cli("validate", *cli_args(tmp_path, ddp_fit.csv), f"--ckpt_path={ddp_fit.ckpt}"), cwd=tmp_path)
    assert_same_metrics(scalars(only_run(tmp_path)), single_validate, "val/")


@pytest.mark.slow
def test_ddp_test_through_torchrun_equals_one_process(ddp_fit, tmp_path: Path):
    env = clean_env(CONFIG="configs/default.yaml", NPROC_PER_NODE="2")
    args = run_args(tmp_path / "ddp", ddp_fit.csv, f"--ckpt_path={ddp_fit.ckpt}")  # the script adds the configs
    output = launch(["bash", "scripts/torchrun.sh", "test", *args], cwd=REPO, env=env)
    assert "MEMBER: 2/2" in output.stdout
    build_cli(["test", *cli_args(tmp_path / "single", ddp_fit.csv, ddp=False), f"--ckpt_path={ddp_fit.ckpt}"])
    assert_same_metrics(scalars(only_run(tmp_path / "ddp")), scalars(only_run(tmp_path / "single")), "test/")


@pytest.mark.slow
def test_ddp_backtest_predictions_hold_every_window_once_in_time_order(ddp_fit, tmp_path: Path):
    backtest = ["--data.predict_mode=backtest", "--data.predict_split=test", f"--ckpt_path={ddp_fit.ckpt}"]
    ddp, single = tmp_path / "ddp.csv", tmp_path / "single.csv"
    launch(
        cli("predict", *cli_args(tmp_path / "d", ddp_fit.csv, f"--predictions.output_path={ddp}", *backtest)),
        cwd=tmp_path,
    )
    build_cli(
        ["predict", *cli_args(tmp_path / "s", ddp_fit.csv, f"--predictions.output_path={single}", *backtest, ddp=False)]
    )
    table, expected = pd.read_csv(ddp), pd.read_csv(single)
    assert table["window_id"].nunique() == 59 and len(table) == 59 * 2  # every test window, each once
    assert table["window_id"].is_monotonic_increasing and (table["step"] == np.tile([1, 2], 59)).all()
    assert pd.to_datetime(table["forecast_origin"]).is_monotonic_increasing
    pd.testing.assert_frame_equal(table.drop(columns="value"), expected.drop(columns="value"))
    np.testing.assert_allclose(table["value"], expected["value"], rtol=RTOL, atol=ATOL)


@pytest.mark.slow
def test_ddp_forecast_with_fewer_windows_than_ranks_writes_the_one_window(ddp_fit, tmp_path: Path):
    # One series: one forecast window for two ranks. Both run it; the file holds it once.
    output = tmp_path / "forecast.csv"
    launch(
        cli(
            "predict",
            *cli_args(
                tmp_path / "d", ddp_fit.csv, f"--predictions.output_path={output}", f"--ckpt_path={ddp_fit.ckpt}"
            ),
        ),
        cwd=tmp_path,
    )
    table = pd.read_csv(output)
    assert table["window_id"].tolist() == [400 - 8] * 2 and table["step"].tolist() == [1, 2]
    assert table["timestamp"].tolist() == ["2021-02-04", "2021-02-05"]  # the two days after the series ends

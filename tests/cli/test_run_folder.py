"""Failed and predict runs leave no run folder of bookkeeping only; predict never exits 0 without its output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from torch.utils.tensorboard import SummaryWriter

from lightning_lstm.cli import build_cli, main
from lightning_lstm.cli.run_folder import only_bookkeeping
from tests.helpers import tiny_fit_args, write_weekly_sine

pytestmark = pytest.mark.usefixtures("one_thread")


def test_only_bookkeeping(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("x")
    writer = SummaryWriter(str(tmp_path))  # an event file with the file header only
    writer.close()
    assert only_bookkeeping(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    assert only_bookkeeping(tmp_path)  # an empty folder holds nothing
    writer = SummaryWriter(str(tmp_path))
    writer.add_scalar("train/loss_step", 1.0, 0)  # a logged value is no bookkeeping
    writer.close()
    assert not only_bookkeeping(tmp_path)


def runs(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in (root / "default").rglob("*") if p.is_dir())


def test_failed_and_predict_runs_leave_no_empty_run_folder(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    csv = write_weekly_sine(tmp_path / "sine.csv", steps=200)
    fit = [
        "fit",
        *tiny_fit_args(tmp_path, f"--data.path={csv}", "--data.target_columns=[value]", "--data.lookback=10"),
        "--data.horizon=2",
        "--trainer.max_epochs=1",
        "--trainer.limit_train_batches=2",
        "--forecast_plot.every_n_epochs=0",
    ]
    with pytest.raises(ValueError, match="the train split has no window"):
        build_cli([*fit, "--data.lookback=500"])
    assert runs(tmp_path) == []  # Lightning had opened version_0 (an empty event file) before the data failed
    build_cli(fit)
    assert runs(tmp_path) == ["default/version_0", "default/version_0/checkpoints"]
    run = tmp_path / "default" / "version_0"
    predict = ["predict", "--config", str(run / "config.yaml"), f"--ckpt_path={run / 'checkpoints' / 'last.ckpt'}"]
    build_cli(predict)  # into the checkpoint's run folder, its predict/ sub-folder (lightning_lstm/cli/run_logger.py)
    assert (run / "predict" / "predictions.csv").is_file()
    kept = {p: p.read_bytes() for p in (run / "predict").iterdir()}
    shutil.copy(run / "checkpoints" / "last.ckpt", tmp_path / "model.ckpt")  # outside a run: a new version_1
    elsewhere = [
        *predict[:3],
        f"--ckpt_path={tmp_path / 'model.ckpt'}",
        f"--predictions.output_path={tmp_path / 'f.csv'}",
    ]
    build_cli(elsewhere)
    assert (tmp_path / "f.csv").is_file() and not (tmp_path / "default" / "version_1").exists()  # it held nothing

    pd.read_csv(csv).head(6).to_csv(tmp_path / "six.csv", index=False)
    capsys.readouterr()
    status = main([*predict, f"--data.path={tmp_path / 'six.csv'}", f"--predictions.output_path={tmp_path / 'x.csv'}"])
    err = capsys.readouterr().err
    assert status == 2 and not (tmp_path / "x.csv").exists()
    assert f"{tmp_path / 'six.csv'}: no complete window to forecast from: the file has 6 rows" in err
    assert "data.lookback = 10" in err and err.count("error:") == 1
    assert {p: p.read_bytes() for p in (run / "predict").iterdir()} == kept  # its new event file was removed
    assert runs(tmp_path) == ["default/version_0", "default/version_0/checkpoints", "default/version_0/predict"]

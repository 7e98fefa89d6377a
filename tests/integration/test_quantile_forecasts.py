"""Seasonal lags, the residual over the seasonal naive and quantile forecasts through the CLI: fit, test, forecast
and backtest, and the test scores recomputed from the written backtest (the same windows)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.collections import PolyCollection

from lightning_lstm.callbacks import ForecastPlot
from lightning_lstm.cli import build_cli
from lightning_lstm.model.module import LSTMForecaster
from tests.helpers import REPO

LOOKBACK, HORIZON, ROWS = 24, 6, 400
LEVELS = "[0.1,0.5,0.9]"
ROWS_TRAIN_WINDOWS = 203  # 70% of 400 rows, less the 48 rows of history the longest lag needs and one window

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def write_load(path: Path) -> Path:
    """Hourly ``load`` with a daily cycle and noise."""
    t = np.arange(ROWS)
    load = 50 + 5 * np.sin(2 * np.pi * t / 24) + 0.5 * np.random.default_rng(0).standard_normal(ROWS)
    pd.DataFrame({"date": pd.date_range("2024-03-01", periods=ROWS, freq="h"), "load": load}).to_csv(path, index=False)
    return path


def common(csv: Path) -> list[str]:
    return [
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        f"--data.path={csv}",
        "--data.target_columns=[load]",
        f"--data.lookback={LOOKBACK}",
        f"--data.horizon={HORIZON}",
        "--data.seasonal_lags=[24,48]",
    ]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A short fit with lags, the residual and quantiles; its test scores."""
    root = tmp_path_factory.mktemp("quantiles")
    csv = write_load(root / "load.csv")
    fit = build_cli(
        [
            "fit", "--config", str(REPO / "configs" / "default.yaml"),
            f"--trainer.logger.init_args.save_dir={root}", "--trainer.logger.init_args.name=q",
            "--trainer.max_epochs=2", "--trainer.limit_train_batches=4",
            "--model.hidden_size=4", "--model.num_layers=1",
            "--model.residual=seasonal_naive", f"--model.quantiles={LEVELS}", "--forecast_plot.every_n_epochs=0",
            *common(csv),
        ]
    )  # fmt: skip
    folder = root / "q" / "version_0"
    ckpt = folder / "checkpoints" / "last.ckpt"
    config = ["--config", str(folder / "config.yaml"), "--ckpt_path", str(ckpt)]
    tested = build_cli(["test", *config, "--trainer.enable_progress_bar=false"])
    return {
        "root": root,
        "csv": csv,
        "config": config,
        "ckpt": ckpt,
        "fit": fit,
        "scores": tested.trainer.callback_metrics,
    }


def test_the_checkpoint_carries_the_options_and_the_lags_reach_the_model(run: dict) -> None:
    checkpoint = torch.load(run["ckpt"], map_location="cpu", weights_only=True)
    hparams = checkpoint["hyper_parameters"]
    assert hparams["quantiles"] == [0.1, 0.5, 0.9] and hparams["residual"] == "seasonal_naive"
    assert hparams["future_size"] == 2  # data.num_known_features: one per lag (one target)
    assert checkpoint["state_dict"]["net.head.weight"].shape == (HORIZON * 3, 4 + HORIZON * 2)  # H * T * Q outputs
    step = run["fit"].model.last_train_step  # per window: the pinball loss averaged over H, T and Q
    assert step["window_losses"].shape == step["window_ids"].shape == (ROWS_TRAIN_WINDOWS - 3 * 64,)  # last batch
    torch.testing.assert_close(step["window_losses"].mean(), step["loss"])


def test_predict_writes_one_column_per_quantile_beside_the_median(run: dict) -> None:
    build_cli(["predict", *run["config"], "--trainer.enable_progress_bar=false", "--predictions.output_path=f.csv"])
    table = pd.read_csv(next(run["root"].rglob("f.csv")))
    assert list(table.columns)[5:] == ["load", "load_q10", "load_q50", "load_q90"]
    assert len(table) == HORIZON
    assert (table["load_q10"] <= table["load_q50"]).all() and (table["load_q50"] <= table["load_q90"]).all()
    assert np.array_equal(table["load"], table["load_q50"])  # the point column is the median


def test_test_scores_match_the_written_backtest_of_the_same_windows(run: dict) -> None:
    build_cli(
        [
            "predict", *run["config"], "--trainer.enable_progress_bar=false", "--predictions.output_path=b.csv",
            "--data.predict_mode=backtest", "--data.predict_split=test",
        ]
    )  # fmt: skip
    table = pd.read_csv(next(run["root"].rglob("b.csv")))
    assert list(table.columns)[5:] == ["load", "load_q10", "load_q50", "load_q90", "load_true"]
    truth, scores = table["load_true"].to_numpy(), run["scores"]
    inside = (truth >= table["load_q10"]) & (truth <= table["load_q90"])
    assert float(scores["test/coverage_80"]) == pytest.approx(inside.mean(), abs=1e-6)
    pinball = np.mean(
        [np.maximum(q * (truth - table[c]), (q - 1) * (truth - table[c])) for q, c in ((0.1, "load_q10"),
         (0.5, "load_q50"), (0.9, "load_q90"))], axis=0,
    ).mean()  # fmt: skip
    assert float(scores["test/pinball"]) == pytest.approx(pinball, rel=1e-4)
    assert float(scores["test/mae"]) == pytest.approx(np.abs(truth - table["load"]).mean(), rel=1e-4)


def test_forecast_images_draw_the_band(run: dict) -> None:
    model, data = run["fit"].model, run["fit"].datamodule
    figures = ForecastPlot(num_windows=2).figures(model, data, "val")
    assert len(figures) == 2
    bands = [c for c in figures[0].axes[0].collections if isinstance(c, PolyCollection)]
    assert len(bands) == 1 and bands[0].get_label() == "q10-q90"
    figures[0].savefig(run["root"] / "forecast_band.png")


def test_the_checkpoint_carries_the_widening_fitted_on_the_validation_span(run: dict) -> None:
    """The stored widening is the (1 - 0.2)(1 + 1/n) quantile of the validation windows' scores of the saved weights,
    recomputed here by hand from the validation span alone (the test span plays no part)."""
    checkpoint = torch.load(run["ckpt"], map_location="cpu", weights_only=True)
    widening = checkpoint["state_dict"]["interval_widening"]  # (H, T, I) in scaled units
    assert widening.shape == (HORIZON, 1, 1) and checkpoint["hyper_parameters"]["calibration"] == "per_step"
    model = LSTMForecaster.load_from_checkpoint(run["ckpt"], map_location="cpu").eval()
    scores = []
    with torch.no_grad():
        for batch in run["fit"].datamodule.val_dataloader():
            quantiles = model.to_original_scale(model(*model.inputs(batch)), batch).numpy()  # (B, H, 1, Q)
            truth, scale = batch["y_raw"].numpy(), batch["target_scale"].numpy()[:, None, :]  # (B, H, 1), (B, 1, 1)
            scores.append(np.maximum(quantiles[..., 0] - truth, truth - quantiles[..., 2]) / scale)
    scores = np.concatenate(scores)[..., 0]  # (N, H)
    n = len(scores)
    expected = np.sort(scores, axis=0)[int(np.ceil((n + 1) * 0.8)) - 1]  # (H,): the ceil((n + 1) 0.8)-th smallest
    np.testing.assert_allclose(widening[:, 0, 0].numpy(), expected, rtol=1e-5, atol=1e-6)


def test_predict_applies_the_widening_and_a_checkpoint_without_it_predicts_as_trained(run: dict) -> None:
    checkpoint = torch.load(run["ckpt"], map_location="cpu", weights_only=True)
    widening = checkpoint["state_dict"].pop("interval_widening")[:, 0, 0].numpy()  # (H,)
    old = run["root"] / "before_calibration.ckpt"  # as written before model.calibration existed
    torch.save(checkpoint, old)
    tables = {}
    for name, ckpt in (("calibrated", run["ckpt"]), ("old", old)):
        build_cli(
            [
                "predict", "--config", run["config"][1], "--ckpt_path", str(ckpt),
                "--trainer.enable_progress_bar=false", f"--predictions.output_path={name}.csv",
                "--data.predict_mode=backtest", "--data.predict_split=test",
            ]
        )  # fmt: skip
        tables[name] = pd.read_csv(next(run["root"].rglob(f"{name}.csv")))
    calibrated, before = tables["calibrated"], tables["old"]
    assert np.array_equal(calibrated["load_q50"], before["load_q50"])  # the point forecast is untouched
    assert (calibrated["load_q10"] <= calibrated["load_q50"]).all() and (
        calibrated["load_q50"] <= calibrated["load_q90"]
    ).all()
    scale = float(checkpoint[next(k for k, v in checkpoint.items() if isinstance(v, dict) and "statistics" in v)][
        "statistics"]["scale"][0])  # fmt: skip
    moved = (calibrated["load_q90"] - before["load_q90"]).to_numpy()  # the widening in the data's units, per step
    np.testing.assert_allclose(moved, scale * widening[calibrated["step"] - 1], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose((before["load_q10"] - calibrated["load_q10"]).to_numpy(), moved, rtol=1e-4, atol=1e-4)

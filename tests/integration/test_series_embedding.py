"""``model.series_embedding`` on a real panel through the CLI: fit, the checkpoint's series names, backtests of a file
holding some training series in another order (each series keeps its own vector), and the refusals."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from lightning_lstm.cli import build_cli
from lightning_lstm.model.module import LSTMForecaster
from lightning_lstm.model.series_embedding import SERIES_KEY, WEIGHT_KEY
from tests.helpers import FLIGHTS_PANEL, REPO

ROUTES = ["JFK-LAX", "LGA-ORD", "EWR-BOS"]  # busy, busy, less busy: levels apart
DAYS, EMBEDDING = 30, 3

pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


def write_panel(path: Path, routes: list[str]) -> Path:
    """The first ``DAYS`` days of ``routes`` from the shipped panel, in the order given."""
    table = pd.read_csv(FLIGHTS_PANEL, parse_dates=["time"])
    table = table[table["time"] < pd.Timestamp("2013-01-01") + pd.Timedelta(days=DAYS)]
    parts = [table[table["series"] == route] for route in routes]
    pd.concat(parts).to_csv(path, index=False)
    return path


def data_args(csv: Path) -> list[str]:
    return [
        f"--data.path={csv}",
        "--data.time_column=time",
        "--data.series_column=series",
        "--data.target_columns=[departures]",
        "--data.lookback=48",
        "--data.horizon=6",
        "--data.calendar=[hour_of_day]",
        "--data.batch_size=32",
    ]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A short fit of three routes with a 3-value series embedding."""
    root = tmp_path_factory.mktemp("embedding")
    csv = write_panel(root / "panel.csv", ROUTES)
    fit = build_cli(
        [
            "fit", "--config", str(REPO / "configs" / "default.yaml"),
            f"--trainer.logger.init_args.save_dir={root}", "--trainer.logger.init_args.name=e",
            "--trainer.max_epochs=2", "--trainer.limit_train_batches=4", "--trainer.enable_progress_bar=false",
            "--model.hidden_size=4", "--model.num_layers=1", f"--model.series_embedding={EMBEDDING}",
            "--forecast_plot.every_n_epochs=0", *data_args(csv),
        ]
    )  # fmt: skip
    ckpt = fit.trainer.checkpoint_callback.best_model_path
    return {"root": root, "csv": csv, "ckpt": ckpt, "config": Path(fit.trainer.log_dir) / "config.yaml"}


def backtest(run: dict, csv: Path, out: Path, *extra: str) -> pd.DataFrame:
    build_cli(
        [
            "predict", "--config", str(run["config"]), f"--ckpt_path={run['ckpt']}", f"--data.path={csv}",
            "--data.predict_mode=backtest", "--data.backtest_stride=6",
            f"--predictions.output_path={out}", *extra,
        ]
    )  # fmt: skip
    return pd.read_csv(out)


def test_checkpoint_holds_the_series_and_their_vectors(run: dict) -> None:
    checkpoint = torch.load(run["ckpt"], map_location="cpu", weights_only=True)
    assert checkpoint[SERIES_KEY] == sorted(ROUTES)  # the panel reader sorts series by name
    assert checkpoint["state_dict"][WEIGHT_KEY].shape == (3, EMBEDDING)
    assert checkpoint["hyper_parameters"]["series_embedding"] == EMBEDDING
    model = LSTMForecaster.load_from_checkpoint(run["ckpt"], map_location="cpu").eval()  # no Trainer, no data
    assert model.series_names == sorted(ROUTES)
    x, known = torch.randn(2, 48, 1), torch.randn(2, 54, 2)  # (B, L, F), (B, L + H, K)
    with torch.no_grad():
        first, second = (model(x, known, None, torch.tensor([s, s])) for s in (0, 1))
    assert first.shape == (2, 6, 1)
    assert not torch.allclose(first, second)  # the same window reads another series' vector: another forecast


def test_a_subset_in_another_order_keeps_each_series_vector(run: dict) -> None:
    full = backtest(run, run["csv"], run["root"] / "full.csv")
    subset_csv = write_panel(run["root"] / "subset.csv", ["LGA-ORD", "EWR-BOS"])  # frame order: EWR-BOS, LGA-ORD
    subset = backtest(run, subset_csv, run["root"] / "subset.csv.out.csv")
    assert set(subset["series"]) == {"LGA-ORD", "EWR-BOS"}
    keys = ["series", "forecast_origin", "timestamp"]
    merged = subset.merge(full, on=keys, suffixes=("", "_full"), validate="one_to_one")
    assert len(merged) == len(subset) > 0
    pd.testing.assert_series_equal(merged["departures"], merged["departures_full"], check_names=False)


def test_a_series_not_seen_in_training_is_refused(run: dict) -> None:
    other = write_panel(run["root"] / "other.csv", ["JFK-LAX", "JFK-SFO"])
    with pytest.raises(ValueError, match=r"model.series_embedding: series \['JFK-SFO'\] of .*other.csv were not in"):
        backtest(run, other, run["root"] / "other_out.csv")


def test_a_model_without_the_embedding_refuses_the_checkpoint(run: dict) -> None:
    """(The CLI takes model.* from the checkpoint's hyperparameters; a model built in Python may differ.)"""
    checkpoint = torch.load(run["ckpt"], map_location="cpu", weights_only=True)
    hparams = {**checkpoint["hyper_parameters"], "series_embedding": 0}
    model = LSTMForecaster(**{k: v for k, v in hparams.items() if k in ("input_size", "future_size", "horizon")})
    with pytest.raises(ValueError, match="trained with model.series_embedding = 3, but the config gives 0"):
        model.on_load_checkpoint(checkpoint)


def test_the_key_is_in_print_config(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_cli(["fit", "--config", str(REPO / "configs" / "default.yaml"), "--print_config"])
    assert "  series_embedding: 0\n" in capsys.readouterr().out


def test_an_ensemble_of_embedding_checkpoints(run: dict) -> None:
    """A member rebuilds its embedding from its checkpoint: the checkpoint averaged with itself forecasts as alone."""
    alone = backtest(run, run["csv"], run["root"] / "alone.csv")
    twice = backtest(run, run["csv"], run["root"] / "twice.csv", f"--predictions.ensemble=[{run['ckpt']}]")
    pd.testing.assert_series_equal(alone["departures"], twice["departures"], rtol=1e-5)


def test_a_fit_resumes_from_an_embedding_checkpoint(run: dict) -> None:
    """The table is rebuilt from the checkpoint before the optimizer: its state loads and training goes on."""
    last = Path(run["ckpt"]).parent / "last.ckpt"
    before = torch.load(last, map_location="cpu", weights_only=True)
    fit = build_cli(
        ["fit", "--config", str(run["config"]), f"--ckpt_path={last}", "--trainer.max_epochs=3"]
    )  # fmt: skip
    assert fit.trainer.global_step == before["global_step"] + 4  # one more epoch of 4 batches
    after = fit.model.net.series_vectors.weight.detach()
    assert after.shape == before["state_dict"][WEIGHT_KEY].shape
    assert not torch.equal(after, before["state_dict"][WEIGHT_KEY])  # the vectors went on learning

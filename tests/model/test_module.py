"""The LightningModule: weight-decay groups, ReduceLROnPlateau read back from TensorBoard, original-scale metrics."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import pytest
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lightning_lstm.cli.checkpoints import monitor_train_loss_without_validation
from lightning_lstm.data.datamodule import TimeSeriesDataModule
from lightning_lstm.model.module import LSTMForecaster
from lightning_lstm.model.param_groups import weight_decay_groups

LOOKBACK, HORIZON = 6, 2
VAL_START, TEST_START = "2020-04-10", "2020-05-10"  # rows 100 and 130 of the daily series below


pytestmark = pytest.mark.usefixtures("one_thread")  # see tests/conftest.py


@pytest.fixture
def affine_csv(tmp_path: Path) -> Path:
    """150 days of ``1000 + 50 * s(t)``, ``s`` a weekly sine with noise: far from the scaled range."""
    t = np.arange(150)
    s = np.sin(2 * np.pi * t / 7) + 0.3 * np.random.default_rng(1).standard_normal(len(t))
    path = tmp_path / "affine.csv"
    pd.DataFrame({"date": pd.date_range("2020-01-01", periods=len(t), freq="D"), "value": 1000 + 50 * s}).to_csv(
        path, index=False
    )
    return path


def datamodule(path: Path, **overrides) -> TimeSeriesDataModule:
    options = dict(
        path=str(path),
        target_columns=["value"],
        lookback=LOOKBACK,
        horizon=HORIZON,
        val_start=VAL_START,
        test_start=TEST_START,
        shuffle=False,
        batch_size=16,
    )
    return TimeSeriesDataModule(**{**options, **overrides})


def trainer(root: Path, **overrides) -> pl.Trainer:
    options = dict(
        default_root_dir=root,
        logger=TensorBoardLogger(root, name="run"),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        log_every_n_steps=1,
        callbacks=[LearningRateMonitor(logging_interval="epoch")],
    )
    return pl.Trainer(**{**options, **overrides})


def scalars(run: Path, tag: str) -> list[tuple[int, float]]:
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def test_weight_decay_groups_keep_biases_and_1d_parameters_out():
    model = LSTMForecaster(
        input_size=2,
        num_targets=1,
        horizon=3,
        hidden_size=4,
        num_layers=2,
        head="mlp",
        optimizer=partial(torch.optim.AdamW, lr=1e-3, weight_decay=0.05),
    )
    model.net.norm = torch.nn.LayerNorm(4)  # a normalisation weight: 1-D, must not be decayed either
    names = {id(p): n for n, p in model.named_parameters()}
    groups = {g["name"]: [names[id(p)] for p in g["params"]] for g in weight_decay_groups(model)}
    assert set(groups["no_decay"]) == {n for n, p in model.named_parameters() if p.ndim < 2}
    assert "net.norm.weight" in groups["no_decay"] and "net.lstm.bias_hh_l1" in groups["no_decay"]
    assert all(not n.endswith("bias") and "bias_" not in n for n in groups["weights"])
    assert {"net.lstm.weight_ih_l0", "net.head.0.weight"} <= set(groups["weights"])

    optimizer = model.configure_optimizers()["optimizer"]  # no Trainer attached: must still work
    decay = {g["name"]: g["weight_decay"] for g in optimizer.param_groups}
    assert decay == {"weights": 0.05, "no_decay": 0.0}
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))


def frozen_forecaster(**kwargs) -> LSTMForecaster:
    """A model whose loss cannot move (learning rate 1e-9): every monitored metric stalls.

    ``eps=0``: ReduceLROnPlateau ignores LR changes smaller than ``eps`` (1e-8 by default).
    """
    return LSTMForecaster(
        input_size=1,
        num_targets=1,
        horizon=HORIZON,
        hidden_size=4,
        num_layers=1,
        optimizer=partial(torch.optim.SGD, lr=1e-9),
        scheduler=partial(torch.optim.lr_scheduler.ReduceLROnPlateau, factor=0.1, patience=1, eps=0.0),
        **kwargs,
    )


def test_plateau_scheduler_lowers_the_lr_when_val_loss_stalls(affine_csv: Path, tmp_path: Path):
    pl.seed_everything(0)
    run_trainer = trainer(tmp_path, max_epochs=4, limit_train_batches=2, limit_val_batches=1)
    run_trainer.fit(frozen_forecaster(), datamodule=datamodule(affine_csv))
    run = Path(run_trainer.logger.log_dir)
    assert run_trainer.lr_scheduler_configs[0].monitor == "val/loss"
    for tag in ("lr/weights", "lr/no_decay"):
        lrs = [lr for _, lr in scalars(run, tag)]  # one per epoch; the epoch after 2 bad epochs runs at 1e-10
        assert lrs == pytest.approx([1e-9, 1e-9, 1e-9, 1e-10], rel=1e-5), (tag, lrs)


def test_without_validation_split_scheduler_and_checkpoint_follow_train_loss(affine_csv: Path, tmp_path: Path):
    pl.seed_everything(0)
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints", monitor="val/loss")
    callbacks = [LearningRateMonitor(logging_interval="epoch"), checkpoint]
    run_trainer = trainer(tmp_path, max_epochs=4, limit_train_batches=2, callbacks=callbacks, enable_checkpointing=True)
    data = datamodule(affine_csv, val_start=None, val_fraction=0.0)
    assert not data.has_validation
    with pytest.warns(UserWarning, match="no validation split: the best checkpoint follows 'train/loss_epoch'"):
        monitor_train_loss_without_validation(run_trainer, data.has_validation)  # what the CLI does before fit
    with pytest.warns(UserWarning, match="no validation split: ReduceLROnPlateau follows 'train/loss_epoch'"):
        run_trainer.fit(frozen_forecaster(), datamodule=data)
    assert run_trainer.lr_scheduler_configs[0].monitor == "train/loss_epoch"
    lrs = [lr for _, lr in scalars(Path(run_trainer.logger.log_dir), "lr/weights")]
    assert lrs == pytest.approx([1e-9, 1e-9, 1e-9, 1e-10], rel=1e-5), lrs
    assert checkpoint.monitor == "train/loss_epoch" and Path(checkpoint.best_model_path).is_file()


class EpochLevelForecaster(LSTMForecaster):
    """Forecasts a per-epoch constant (scaled units), so the validation loss goes high, low, middle."""

    levels = (2.0, 0.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        level = self.levels[self.current_epoch] + 0 * self.net.head.bias.sum()  # keeps a graph to backpropagate
        return level.expand(x.shape[0], self.hparams.horizon, 1)  # (B, H, T)


def test_hp_metric_is_the_best_validation_loss_so_far(affine_csv: Path, tmp_path: Path):
    run_trainer = trainer(tmp_path, max_epochs=3, limit_train_batches=1)
    run_trainer.fit(
        EpochLevelForecaster(input_size=1, horizon=HORIZON, hidden_size=4), datamodule=datamodule(affine_csv)
    )
    run = Path(run_trainer.logger.log_dir)
    val = [loss for _, loss in scalars(run, "val/loss")]
    assert val[0] > val[2] > val[1]  # not monotone: the last loss is not the best
    hp_metric = [value for _, value in scalars(run, "hp_metric")][-3:]  # after the logger's initial -1
    assert hp_metric == pytest.approx([val[0], val[1], val[1]])


class ConstantForecaster(LSTMForecaster):
    """Forecasts ``level`` in scaled units for every window: on the original scale, ``center + level * scale``."""

    level = 0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], self.hparams.horizon, 1), self.level)  # (B, H, T)


def hand_scores(values: np.ndarray, forecast: float, first_target: int, end: int) -> dict[str, float]:
    """MAE and RMSE of a constant forecast, and MAE of the naive forecast, over every window with targets in
    rows ``[first_target, end)``, by explicit loops over windows and steps."""
    errors, naive = [], []
    for start in range(first_target - LOOKBACK, end - LOOKBACK - HORIZON + 1):
        for h in range(HORIZON):
            truth = values[start + LOOKBACK + h]
            errors.append(truth - forecast)
            naive.append(truth - values[start + LOOKBACK - 1])
    errors = np.array(errors)
    return {"mae": np.abs(errors).mean(), "rmse": np.sqrt((errors**2).mean()), "naive": np.abs(naive).mean()}


def test_metrics_are_on_the_original_scale(affine_csv: Path, tmp_path: Path):
    values = pd.read_csv(affine_csv)["value"].to_numpy()
    train = values[:100]  # before VAL_START
    forecast = train.mean() + ConstantForecaster.level * train.std(ddof=0)  # standard scaling, population std
    model = ConstantForecaster(input_size=1, num_targets=1, horizon=HORIZON, hidden_size=4, num_layers=1)
    data = datamodule(affine_csv, window_norm="none")

    tested = trainer(tmp_path).test(model, datamodule=data, verbose=False)[0]
    expected = hand_scores(values, forecast, 130, 150)
    assert tested["test/mae"] == pytest.approx(expected["mae"], rel=1e-4)
    assert tested["test/rmse"] == pytest.approx(expected["rmse"], rel=1e-4)
    assert tested["test/naive_mae"] == pytest.approx(expected["naive"], rel=1e-4)
    assert tested["test/mae_ratio_naive"] == pytest.approx(expected["mae"] / expected["naive"], rel=1e-4)
    # The loss stays in scaled units, averaged over windows (batches of 16 and 3), not over batch means.
    assert tested["test/loss"] == pytest.approx((expected["rmse"] / train.std(ddof=0)) ** 2, rel=1e-4)

    validated = trainer(tmp_path).validate(model, datamodule=data, verbose=False)[0]
    assert validated["val/mae"] == pytest.approx(hand_scores(values, forecast, 100, 130)["mae"], rel=1e-4)


def test_last_value_windows_map_back_to_the_original_scale(affine_csv: Path, tmp_path: Path):
    """With ``window_norm: last`` a zero output is the last observed value: the model's MAE is the naive MAE."""
    values = pd.read_csv(affine_csv)["value"].to_numpy()
    ConstantForecaster.level = 0.0
    try:
        model = ConstantForecaster(input_size=1, num_targets=1, horizon=HORIZON, hidden_size=4, num_layers=1)
        tested = trainer(tmp_path).test(model, datamodule=datamodule(affine_csv, window_norm="last"), verbose=False)[0]
    finally:
        ConstantForecaster.level = 0.5
    naive = hand_scores(values, 0.0, 130, 150)["naive"]
    assert tested["test/mae"] == pytest.approx(naive, rel=1e-4)
    assert tested["test/mae_ratio_naive"] == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "option"), [({"loss": "mape"}, "model.loss"), ({"huber_delta": 0}, "model.huber_delta")]
)
def test_invalid_options_name_the_flag(kwargs: dict, option: str):
    with pytest.raises(ValueError, match=option):
        LSTMForecaster(**kwargs)

"""The LightningModule: loss, metrics on the original scale, optimizer and scheduler wiring, gradient-norm logging.

Run: ``python -m lightning_lstm fit --config configs/default.yaml``; quantiles and a residual over the seasonal naive:
``... --data.seasonal_lags '[24, 168]' --model.residual seasonal_naive --model.quantiles '[0.1, 0.5, 0.9]'``.
"""

from __future__ import annotations

from typing import Literal, get_args

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import nn
from torchmetrics import MeanMetric

from lightning_lstm.data import scaling
from lightning_lstm.model.calibration import CALIBRATIONS, Calibration, ConformalCalibration, fewest_scores, widen
from lightning_lstm.model.ensemble import ensemble_mean, load_member
from lightning_lstm.model.metrics import (
    BaselineComparison,
    forecast_metrics,
    observed_truth,
    observed_values,
    window_losses,
)
from lightning_lstm.model.param_groups import weight_decay_groups
from lightning_lstm.model.quantiles import MEDIAN, PinballLoss, QuantileScores, central_intervals, quantile_label
from lightning_lstm.model.regressor import Head, LSTMRegressor
from lightning_lstm.model.residual import RESIDUALS, Residual, add_seasonal_base
from lightning_lstm.model.series_embedding import SERIES_KEY, restore_series, training_series
from lightning_lstm.model.step_logging import logs_this_step, write_step_scalars

Loss = Literal["mse", "huber", "l1"]
LOSSES = get_args(Loss)


def validation_runs(trainer: pl.Trainer | None, datamodule: object | None = None) -> bool:
    """Whether the Trainer will validate: the data's ``has_validation`` (the one place that knows whether there is
    a validation split), and ``trainer.limit_val_batches`` not 0. True when there is nothing to ask."""
    if trainer is None:
        return True
    data = datamodule if datamodule is not None else trainer.datamodule
    return bool(getattr(data, "has_validation", True)) and trainer.limit_val_batches != 0


class LSTMForecaster(pl.LightningModule):
    """An LSTM regressor trained on scaled windows and scored on the original scale.

    Args:
        input_size: features per step (linked from ``data.num_features``).
        num_targets: target columns (linked from ``data.num_targets``).
        horizon: forecast steps (linked from ``data.horizon``).
        future_size: known-future inputs per step (linked from ``data.num_known_features``: known-future columns
            and calendar pairs), read for the lookback and the horizon; 0 for none.
        hidden_size: LSTM units per layer.
        num_layers: stacked LSTM layers.
        dropout: dropout between LSTM layers and in the MLP head.
        bidirectional: also read each window backwards.
        head: ``linear`` or ``mlp`` head on the last time step's hidden state.
        loss: training loss on scaled targets: ``mse``, ``huber`` or ``l1``.
        huber_delta: the Huber loss's switch point (in scaled units).
        quantiles: quantile levels to forecast, increasing, 0.5 among them (e.g. ``[0.1, 0.5, 0.9]``): the loss is
            then the pinball loss (``model.loss`` is not used), the median is the point forecast every metric reads,
            ``predict`` writes ``<target>_q10`` ... beside it and ``test/`` logs ``pinball`` and ``coverage_80``
            (each central interval). ``null``: a point forecast.
        calibration: with ``quantiles``, widen each central interval by split-conformal calibration on the
            validation span (:mod:`.calibration`): ``per_step`` one widening per horizon step, target and interval,
            ``pooled`` one per target and interval (short validation spans), ``none`` the pinball loss's intervals
            as trained. Fitted after every validation epoch with that epoch's weights and saved in the checkpoint
            (``interval_widening``); ``test``, ``predict`` and backtests apply it. Needs a validation split.
        residual: ``seasonal_naive``: the network predicts the correction to the value one season earlier (the first
            of ``data.seasonal_lags`` >= the horizon, else ``data.season_length``), added on the scaled data;
            ``none``: the network predicts the targets.
        series_embedding: panels (``data.series_column``): a learned vector of this many values per training series,
            read by the LSTM at every step and by the head (:mod:`.series_embedding`); 0 (default) for none. The
            series names travel in the checkpoint; predicting a series not seen in training is refused.
        optimizer: optimizer class and arguments; biases and norm weights get no weight decay.
        scheduler: learning-rate scheduler (``null`` for none); ReduceLROnPlateau watches ``scheduler_monitor``.
        scheduler_monitor: the logged metric ReduceLROnPlateau follows; ``train/loss_epoch`` when there is no
            validation split.
    """

    def __init__(
        self,
        input_size: int = 1,
        num_targets: int = 1,
        horizon: int = 4,
        future_size: int = 0,
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.0,
        bidirectional: bool = False,
        head: Head = "linear",
        loss: Loss = "mse",
        huber_delta: float = 1.0,
        quantiles: list[float] | None = None,
        residual: Residual = "none",
        calibration: Calibration = "per_step",
        series_embedding: int = 0,
        optimizer: OptimizerCallable = torch.optim.AdamW,
        scheduler: LRSchedulerCallable | None = torch.optim.lr_scheduler.ReduceLROnPlateau,
        scheduler_monitor: str = "val/loss",
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"model.loss must be one of {list(LOSSES)}, got {loss!r}")
        if huber_delta <= 0:
            raise ValueError(f"model.huber_delta must be > 0, got {huber_delta}")
        if residual not in RESIDUALS:
            raise ValueError(f"model.residual must be one of {list(RESIDUALS)}, got {residual!r}")
        if calibration not in CALIBRATIONS:
            raise ValueError(f"model.calibration must be one of {list(CALIBRATIONS)}, got {calibration!r}")
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        net_args = (hidden_size, num_layers, dropout, bidirectional, head, future_size, quantiles, series_embedding)
        self.net = LSTMRegressor(input_size, num_targets, horizon, *net_args)
        self.series_names: list[str] = []  # the embedding's rows, in order (with series_embedding; set at fit)
        self.quantiles = self.net.quantiles  # checked levels, or None
        self.ensemble_members: list[LSTMRegressor] = []  # predict only: see add_ensemble_members
        self.loss_fn = {
            "mse": nn.MSELoss(reduction="none"),
            "huber": nn.HuberLoss(reduction="none", delta=huber_delta),
            "l1": nn.L1Loss(reduction="none"),
        }[loss]
        self.mean_loss_fn = {"mse": nn.MSELoss(), "huber": nn.HuberLoss(delta=huber_delta), "l1": nn.L1Loss()}[loss]
        if self.quantiles is not None:  # (B, H, T, Q) -> (B, H, T) element losses, as the point losses give
            self.loss_fn, self.mean_loss_fn = PinballLoss(self.quantiles), None
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.val_loss = MeanMetric()  # per-window means, exact across ranks with unequal window counts
        self.test_loss = MeanMetric()
        self.val_metrics = forecast_metrics("val/")
        self.test_metrics = forecast_metrics("test/")
        self.test_baselines = BaselineComparison(horizon)
        self.test_quantiles = QuantileScores(self.quantiles) if self.quantiles else None
        self.intervals = central_intervals(self.quantiles) if self.quantiles else []  # (coverage %, lo, hi) each
        self.val_conformity = None  # the validation epoch's conformity scores, with calibration on
        if self.intervals:  # (H, T, I) in scaled units; zeros until a validation epoch fits it, and in checkpoints
            self.register_buffer("interval_widening", torch.zeros(horizon, num_targets, len(self.intervals)))
            if calibration != "none":
                self.val_conformity = ConformalCalibration(self.intervals, pooled=calibration == "pooled")
        # hp_metric's best val/loss. Not ModelCheckpoint.best_model_score: that follows checkpoint.monitor (any metric;
        # train/loss_epoch without validation) and exists only with checkpointing on.
        self.best_val_loss = float("inf")
        self.last_train_step: dict[str, torch.Tensor] = {}
        self._step_scalars: tuple[int, dict[str, torch.Tensor]] | None = None  # a logging step's, until written
        self._grad_norm: tuple[int, torch.Tensor] | None = None
        self._net_parameters: tuple[torch.nn.Parameter, ...] | None = None  # the network's, listed once per fit
        # The epoch's summed training loss (on the device: no host sync per step) and window count.
        self._epoch_loss: tuple[torch.Tensor | float, torch.Tensor | int] = (0.0, 0)

    def forward(
        self,
        x: torch.Tensor,
        known: torch.Tensor | None = None,
        seasonal_base: torch.Tensor | None = None,
        series: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, L, F), known (B, L + H, K), seasonal_base (B, H, T), series (B,) training-series indices ->
        (B, H, T), or (B, H, T, Q); scaled units."""
        output = self.net(x, known, series)
        return output if self.hparams.get("residual", "none") == "none" else add_seasonal_base(output, seasonal_base)

    def inputs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor | None, ...]:
        """``forward``'s arguments from a batch: ``(x,)``, ``(x, known)`` with known-future inputs,
        ``(x, known or None, seasonal_base)`` with ``model.residual`` and ``(x, known, seasonal_base, series_id)``
        (each possibly None) with ``model.series_embedding``."""
        if self.hparams.get("series_embedding", 0):
            return batch["x"], batch.get("known"), batch.get("seasonal_base"), batch["series_id"]
        if self.hparams.get("residual", "none") != "none":
            return batch["x"], batch.get("known"), batch.get("seasonal_base")
        return (batch["x"], batch["known"]) if "known" in batch else (batch["x"],)

    def point(self, prediction: torch.Tensor) -> torch.Tensor:
        """The point forecast: the median ``(B, H, T)`` of ``(B, H, T, Q)`` quantiles, or the prediction itself."""
        return prediction if self.quantiles is None else prediction[..., self.quantiles.index(MEDIAN)]

    def calibrated(self, prediction: torch.Tensor) -> torch.Tensor:
        """Scaled ``(B, H, T, Q)`` quantiles with each central interval widened by ``interval_widening``
        (:func:`.calibration.widen`; never crossing); point forecasts and models without intervals unchanged."""
        if not self.intervals:
            return prediction
        widening = self.interval_widening.to(prediction.dtype)  # (H, T, I)
        return widen(prediction, widening, self.intervals, self.quantiles.index(MEDIAN))

    def setup(self, stage: str) -> None:
        datamodule = self._trainer.datamodule if self._trainer is not None else None
        if self.hparams.get("residual", "none") != "none" and hasattr(datamodule, "serve_seasonal_base"):
            datamodule.serve_seasonal_base()  # no season: refused before training, not at the first batch
        if stage == "fit" and self.hparams.get("series_embedding", 0) and self.net.series_vectors is None:
            # After the data's setup, before the optimizer: one row per series the statistics were fitted on.
            self.series_names = training_series(datamodule, self.hparams.series_embedding)
            self.net.set_num_series(len(self.series_names))

    def _shared_step(
        self, batch: dict[str, torch.Tensor], stage: str
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | int]:
        """Loss, prediction and the windows they average. Filled targets (``observed`` False) are no observations:
        the loss leaves them out too, so the model never learns a fill's straight line (its inputs keep the fill)."""
        prediction = self(*self.inputs(batch))  # (B, H, T), or (B, H, T, Q) quantiles
        if stage == "train" and "observed" not in batch and self.mean_loss_fn is not None:
            # Every window has H x T targets, so the mean of the window means is the mean of all: one fused loss
            # to differentiate (as a plain loop's), the per-window losses (the spike callback's) outside autograd.
            loss, weight = self.mean_loss_fn(prediction, batch["y"]), None
            with torch.no_grad():
                per_window = window_losses(self.loss_fn(prediction, batch["y"]), None)[0]  # (B,)
        else:
            per_window, weight = window_losses(self.loss_fn(prediction, batch["y"]), batch.get("observed"))  # (B,)
            loss = per_window.mean() if weight is None else (per_window * weight).sum() / weight.sum().clamp(min=1)
        windows = len(per_window) if weight is None else weight.sum().detach()  # those with an observed target
        if stage == "train":
            # No self.log per step: its bookkeeping costs more than this sum. Logged in on_before_optimizer_step
            # at the logger's interval (train/loss_step) and in on_train_epoch_end (train/loss_epoch).
            total, count = self._epoch_loss
            self._epoch_loss = (total + loss.detach() * windows, count + windows)
            self.last_train_step = {
                "loss": loss.detach(),
                "window_losses": per_window.detach(),
                "window_ids": batch["window_id"],
            }
        return loss, prediction, windows

    @staticmethod
    def to_original_scale(prediction: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scaled (B, H, T) outputs, or (B, H, T, Q) quantiles, back to the data's units with each window's target
        statistics."""
        if prediction.dim() == 4:
            center, scale = batch["target_center"][:, None, :, None], batch["target_scale"][:, None, :, None]
            return scaling.inverse(prediction, center, scale)  # (B, H, T, Q)
        return scaling.to_original_scale(prediction, batch)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")[0]

    def on_train_epoch_end(self) -> None:
        total, count = self._epoch_loss
        if self.trainer.world_size > 1:  # every rank's windows, as on one process (so no sync_dist is needed)
            both = torch.stack([torch.as_tensor(v, dtype=torch.float32, device=self.device) for v in (total, count)])
            total, count = self.trainer.strategy.reduce(both, reduce_op="sum").tolist()
        if count:  # the window-weighted mean, as self.log(on_epoch=True) would give
            self.log("train/loss_epoch", torch.as_tensor(total / count, device=self.device), prog_bar=True)
        self._epoch_loss = (0.0, 0)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, prediction, windows = self._shared_step(batch, "val")
        self.val_loss.update(loss, weight=windows)
        forecast, observed = self.to_original_scale(self.point(prediction), batch), batch.get("observed")
        self.val_metrics.update(*observed_values(forecast, batch["y_raw"], observed))
        if self.val_conformity is not None:  # scores in each window's scaled units, against the unclipped truth
            scale = batch["target_scale"][:, None, :]  # (B, 1, T)
            quantiles = self.to_original_scale(prediction, batch) / scale.unsqueeze(-1)  # (B, H, T, Q)
            self.val_conformity.update(quantiles, batch["y_raw"] / scale, observed)

    def on_validation_epoch_end(self) -> None:
        # Lightning computes (synced across ranks by torchmetrics), logs and resets the metric objects.
        self.log("val/loss", self.val_loss, prog_bar=True)
        self.log_dict(self.val_metrics)
        if not self.trainer.sanity_checking:
            val_loss = self.val_loss.compute()  # torchmetrics caches it: the same value Lightning logs
            self.best_val_loss = min(self.best_val_loss, float(val_loss))
            self.log("hp_metric", self.best_val_loss)
        if self.val_conformity is not None and self.val_conformity.update_called:
            if not self.trainer.sanity_checking:  # before ModelCheckpoint's on_validation_end saves this epoch
                self._fit_widening()
            self.val_conformity.reset()

    def _fit_widening(self) -> None:
        widening, fewest = self.val_conformity.compute()  # (H, T, I), synced across ranks
        self.interval_widening.copy_(widening)
        alphas = [1 - coverage / 100 for coverage, _, _ in self.intervals]
        if fewest < fewest_scores(alphas):
            rank_zero_warn(
                f"model.calibration: only {fewest} validation scores per interval widening, too few for the "
                f"finite-sample quantile of every interval (needs {fewest_scores(alphas)}): the largest score is "
                "used. Lengthen data.val_fraction, or set model.calibration: pooled."
            )

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss, prediction, windows = self._shared_step(batch, "test")
        forecast = self.to_original_scale(self.point(prediction), batch)  # (B, H, T)
        if self.test_quantiles is not None:
            quantiles = self.to_original_scale(self.calibrated(prediction), batch)  # (B, H, T, Q)
            self.test_quantiles.update(quantiles, batch["y_raw"], batch.get("observed"))
        self.test_loss.update(loss, weight=windows)
        self.test_metrics.update(*observed_values(forecast, batch["y_raw"], batch.get("observed")))
        self.test_baselines.update(forecast, batch)

    def on_test_epoch_end(self) -> None:
        self.log("test/loss", self.test_loss)  # a synced MeanMetric, not self.log(sync_dist=True): Lightning #21859
        self.log_dict(self.test_metrics)
        # Ratios of synced MAEs under data-dependent keys: no single Metric object, so computed and reset here.
        self.log_dict(self.test_baselines.compute("test/"))
        self.test_baselines.reset()
        if self.test_quantiles is not None:  # test/pinball (original scale) and test/coverage_<percent>
            self.log_dict({f"test/{key}": value for key, value in self.test_quantiles.compute().items()})
            self.test_quantiles.reset()

    def add_ensemble_members(self, checkpoints: list[str], data_state: dict | None = None) -> None:
        """Average ``predict`` forecasts with the networks of these checkpoints (:mod:`.ensemble`; other seeds)."""
        members = [load_member(path, dict(self.hparams), data_state) for path in checkpoints]
        self.ensemble_members = [member.to(self.device) for member in members]

    def predict_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        """``window_id``, ``forecast`` (B, H, T) on the original scale (the median with quantiles), one
        ``forecast_q10`` ... (B, H, T) per quantile level (calibrated: this model's widening on the ensemble's mean
        quantiles), and ``truth`` in backtests."""
        inputs = self.inputs(batch)
        prediction = ensemble_mean(self(*inputs), self.ensemble_members, *inputs)  # (B, H, T[, Q])
        output = {"window_id": batch["window_id"], "forecast": self.to_original_scale(self.point(prediction), batch)}
        if self.quantiles is not None:
            quantiles = self.to_original_scale(self.calibrated(prediction), batch)  # (B, H, T, Q)
            for q, level in enumerate(self.quantiles):
                output[f"forecast_{quantile_label(level)}"] = quantiles[..., q]
        if "y_raw" in batch:
            output["truth"] = observed_truth(batch["y_raw"], batch.get("observed"))  # filled values: NaN
        return output

    def pre_clip_grad_norm(self) -> torch.Tensor:
        """Total L2 norm of the gradients before clipping, computed once per optimizer step (no host sync)."""
        step = self.trainer.global_step
        if self._grad_norm is None or self._grad_norm[0] != step:
            if self._net_parameters is None:  # walking the modules each step costs ~10 us
                self._net_parameters = tuple(self.net.parameters())  # not the metrics' modules
            grads = [p.grad for p in self._net_parameters if p.grad is not None]
            norm = torch.nn.utils.get_total_norm(grads) if grads else torch.zeros((), device=self.device)
            self._grad_norm = (step, norm)
        return self._grad_norm[1]

    def on_fit_start(self) -> None:
        self._net_parameters = None  # the network may have been replaced since the last fit

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # Step values are only written every log_every_n_steps: nothing to do (and no grad norm) in between.
        if not self.last_train_step or not logs_this_step(self._trainer):
            return
        loss = self.last_train_step["loss"]
        if self._trainer.progress_bar_callback is not None:  # the bar's loss; the loggers get it after the update
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True, logger=False)
        scalars = {"train/loss_step": loss, "train/grad_norm": self.pre_clip_grad_norm()}
        self._step_scalars = (self._trainer.global_step, scalars)  # read after the update: none on the hot path

    def on_train_batch_end(self, outputs, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        if self._step_scalars is not None:
            (step, scalars), self._step_scalars = self._step_scalars, None
            write_step_scalars(self._trainer, scalars, step)

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Norm clipping reuses the norm the spike callback and logging already took: one norm per step, not two."""
        if not gradient_clip_val or (gradient_clip_algorithm or "norm") != "norm":
            self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)  # value clipping, or none
            return
        params = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grads_with_norm_(params, gradient_clip_val, self.pre_clip_grad_norm())

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["best_val_loss"] = float(self.best_val_loss)  # so a resumed run keeps its hp_metric
        total, count = self._epoch_loss
        checkpoint["train_loss_epoch_partial"] = [float(total), int(count)]  # a mid-epoch resume keeps its mean
        if self.hparams.get("series_embedding", 0):
            checkpoint[SERIES_KEY] = list(self.series_names)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved_inputs = checkpoint.get("hyper_parameters", {}).get("input_size")
        if saved_inputs is not None and saved_inputs != self.hparams.input_size:  # before the weights fail to fit
            data_state = next((v for v in checkpoint.values() if isinstance(v, dict) and "feature_columns" in v), {})
            datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
            raise ValueError(
                f"the checkpoint was trained with data.feature_columns = "
                f"{data_state.get('feature_columns', f'{saved_inputs} columns')}, but the config gives "
                f"{getattr(datamodule, 'feature_columns', f'{self.hparams.input_size} columns')}. Use the feature "
                "columns of training (see config.yaml in the run folder)."
            )
        saved_future = checkpoint.get("hyper_parameters", {}).get("future_size", 0)
        if saved_future != self.hparams.future_size:
            data_state = next((v for v in checkpoint.values() if isinstance(v, dict) and "statistics" in v), {})
            trained = {key: data_state.get(key, []) for key in ("known_future_columns", "calendar")}
            raise ValueError(
                f"the checkpoint was trained with {saved_future} known-future inputs per step ({trained}), but the "
                f"config gives {self.hparams.future_size}. Use the data.known_future_columns and data.calendar of "
                "training (see config.yaml in the run folder)."
            )
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        self.series_names = restore_series(self.net, checkpoint, self.hparams.get("series_embedding", 0), datamodule)
        state = checkpoint.get("state_dict", {})
        if self.intervals and "interval_widening" not in state:  # saved before model.calibration: as trained
            state["interval_widening"] = torch.zeros_like(self.interval_widening)
            rank_zero_info(
                "this checkpoint has no interval calibration (saved before model.calibration): intervals as trained"
            )
        self.best_val_loss = float(checkpoint.get("best_val_loss", float("inf")))
        total, count = checkpoint.get("train_loss_epoch_partial", [0.0, 0])
        self._epoch_loss = (torch.tensor(total, dtype=torch.float32) if count else 0.0, int(count))

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(weight_decay_groups(self))
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        if not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch", "name": "lr"}}
        monitor = self.hparams.scheduler_monitor
        if monitor.startswith("val/") and not validation_runs(self._trainer):
            rank_zero_warn(
                f"model.scheduler_monitor is {monitor!r} but there is no validation split: ReduceLROnPlateau follows "
                "'train/loss_epoch' instead. Set data.val_fraction > 0 to schedule on held-out data."
            )
            monitor = "train/loss_epoch"
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": monitor, "interval": "epoch", "name": "lr"},
        }

"""Write forecasts on the original scale, with timestamps, series and horizon step, once, from all ranks."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from lightning_lstm.callbacks.contracts import ForecastData, missing_members
from lightning_lstm.callbacks.run_io import gather_objects, run_dir
from lightning_lstm.checkpoint_io import FolderNotWritableError, check_writable, write_atomically

log = logging.getLogger(__name__)

OUTPUT_KEY = "predictions.output_path"


class ForecastWriter(BasePredictionWriter):
    """Collects ``predict`` outputs from every rank and writes one file, ordered by series, time and horizon step.

    Columns: ``window_id``, ``series``, ``forecast_origin`` (last input timestamp), ``timestamp`` (of the forecast
    step: the series' time step after the last observation in forecast mode, the real row in backtests), ``step``
    (1..H), then one ``<target>`` column per target on the original scale (the median with ``model.quantiles``), one
    ``<target>_q10``, ``<target>_q50``, ... per quantile level (from ``predict_step``'s ``forecast_q10`` ...), and in
    backtests ``<target>_true`` beside it, empty where ``data.missing`` filled the target (``predict_step`` returns
    such truth as NaN: it is no observation, and a score computed from the file leaves it out). Timestamps are
    datetimes (typed in Parquet, ISO text in CSV) or integer steps.

    Needs data that places windows in time (:class:`~.contracts.ForecastData`) and a ``predict_step`` that returns
    ``window_id`` and ``forecast`` (``(B, H, T)``, original scale), and ``truth`` in backtests; other data is an
    error before predicting.

    Args:
        output_path: file to write; relative paths land in the run folder. ``.csv`` or ``.parquet`` (needs pyarrow).
            Written atomically, as checkpoints are: a failed or killed write leaves the old file or none.
        overwrite: replace an existing file; otherwise an existing file is an error and is kept intact.
        ensemble: more checkpoints (other seeds of the same data and config) whose forecasts are averaged with the
            ``--ckpt_path`` model's (:mod:`lightning_lstm.model.ensemble`); empty: that model alone.
    """

    def __init__(
        self,
        output_path: str = "predictions.csv",
        overwrite: bool = False,
        ensemble: list[str] = [],
    ) -> None:
        super().__init__(write_interval="epoch")
        suffix = Path(output_path).suffix.lower()
        if suffix not in (".csv", ".parquet"):
            raise ValueError(f"{OUTPUT_KEY} must end in .csv or .parquet, got {output_path!r}")
        self.output_path = output_path
        self.overwrite = overwrite
        self.ensemble = list(ensemble)
        self.written: Path | None = None

    def resolve_path(self, trainer: pl.Trainer) -> Path:
        path = Path(self.output_path)
        return path if path.is_absolute() else run_dir(trainer) / path

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        missing = missing_members(trainer.datamodule, ForecastData)
        if missing:
            raise ValueError(
                f"predictions: ForecastWriter needs a data module with {missing} (lightning_lstm.callbacks.contracts."
                f"ForecastData) to place the forecasts in time; {type(trainer.datamodule).__name__} lacks them. "
                "Predict with the package's TimeSeriesDataModule, or collect trainer.predict's return value instead."
            )
        path = self.resolve_path(trainer)
        if trainer.is_global_zero:  # fail before predicting, not after
            if path.exists() and not self.overwrite:
                raise ValueError(f"{OUTPUT_KEY}: {path} exists; set predictions.overwrite: true or a new path")
            try:  # a real write, not os.access: root passes os.access everywhere, even under /proc
                check_writable(path.parent, OUTPUT_KEY)
            except FolderNotWritableError as err:
                raise ValueError(
                    f"{OUTPUT_KEY}: folder {path.parent} is not writable ({err.strerror or err}); choose another path"
                ) from err
        if self.ensemble:
            self._add_ensemble(trainer, pl_module)

    def _add_ensemble(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not hasattr(pl_module, "add_ensemble_members") or not trainer.ckpt_path:
            raise ValueError(
                "predictions.ensemble averages checkpoints with the --ckpt_path model: give --ckpt_path, and predict "
                f"with the package's LSTMForecaster (got {type(pl_module).__name__})"
            )
        pl_module.add_ensemble_members(self.ensemble, trainer.datamodule.state_dict())
        log.info("averaging the forecasts of %s and %s", trainer.ckpt_path, self.ensemble)

    def write_on_epoch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, predictions: Any, batch_indices: Any
    ) -> None:
        local = collect_outputs(predictions)
        parts = [part for part in gather_objects(local) if part]  # every rank's outputs (one process: its own)
        local = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]} if parts else {}
        path = self.resolve_path(trainer)  # trainer.log_dir is a collective: every rank must ask, not just rank zero
        if not trainer.is_global_zero or not local:
            return
        table = self.build_table(trainer.datamodule, local)
        write_table(table, path)
        self.written = path
        log.info("wrote %d forecasts of %d windows to %s", len(table), table["window_id"].nunique(), path)
        truth = [f"{name}_true" for name in trainer.datamodule.target_columns if f"{name}_true" in table]
        empty = int(table[truth].isna().to_numpy().sum()) if truth else 0
        if empty:  # NaN truth: a target value data.missing filled (the model's observed mask), never an observation
            log.info(
                "%s: %d of %d truth values are empty: data.missing filled them, they were not observed",
                path,
                empty,
                len(table) * len(truth),
            )

    @staticmethod
    def build_table(datamodule: ForecastData, outputs: dict[str, np.ndarray]) -> pd.DataFrame:
        """One row per (window, horizon step), ordered by series, forecast origin and step."""
        forecast_mode = "truth" not in outputs
        # Window ids are start rows: sorted means by series, then time. Unique: under DDP with fewer windows than
        # ranks, a rank without a window of its own repeats one (lightning_lstm/distributed.py); keep it once.
        ids, order = np.unique(outputs["window_id"], return_index=True)
        forecast = outputs["forecast"][order]  # (B, H, T)
        B, H, T = forecast.shape
        unusable = ~np.isfinite(forecast).all(axis=(1, 2))  # (B,)
        if unusable.any():
            log.warning(
                "%d of %d forecasts are not finite: their input windows hold missing values (window ids %s); "
                "data.missing: drop skips such windows in training and backtests, but not the last window of a series",
                int(unusable.sum()),
                B,
                ids[unusable][:5].tolist(),
            )
        windows = datamodule.describe_windows(ids, forecast=forecast_mode)
        origin_rows = ids + datamodule.hparams.lookback - 1
        frame = datamodule.frame
        table = pd.DataFrame(
            {
                "window_id": np.repeat(ids, H),
                "series": np.repeat(windows["series"].to_numpy(), H),
                "forecast_origin": np.repeat(as_times(frame, frame.time_of(origin_rows)), H),
                "timestamp": as_times(frame, datamodule.target_times(ids, forecast=forecast_mode).reshape(-1)),
                "step": np.tile(np.arange(1, H + 1), B),
            }
        )
        quantiles = [key for key in outputs if key.startswith("forecast_q")]  # forecast_q10, ...: (B, H, T) each
        for t, name in enumerate(datamodule.target_columns):
            table[name] = forecast[:, :, t].reshape(-1)
            for key in quantiles:
                table[f"{name}_{key.removeprefix('forecast_')}"] = outputs[key][order][:, :, t].reshape(-1)
            if not forecast_mode:
                table[f"{name}_true"] = outputs["truth"][order][:, :, t].reshape(-1)
        return table


def write_table(table: pd.DataFrame, path: Path) -> None:
    """Write ``table`` to ``path`` (``.parquet`` or CSV) atomically, as checkpoints are written: a kill or a full
    disk leaves the old file or none under ``path``, never part of one.

    Raises:
        CheckpointWriteError: the file cannot be written (disk full, read-only folder); the message names ``path``
            and ``predictions.output_path``, and ``path`` is as it was.
    """
    if path.suffix.lower() == ".parquet":
        write_atomically(path, lambda file: table.to_parquet(file, index=False), OUTPUT_KEY)
    else:
        write_atomically(path, lambda file: table.to_csv(file, index=False), OUTPUT_KEY)


def collect_outputs(predictions: list) -> dict[str, np.ndarray]:
    """``predict_step`` outputs (a list of batch dicts, or one such list per dataloader: the first is taken) joined
    per key into numpy arrays; ``{}`` without batches. The input of :meth:`ForecastWriter.build_table`."""
    batches = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
    return {key: torch.cat([b[key] for b in batches]).cpu().numpy() for key in batches[0]} if batches else {}


def as_times(frame: Any, times: np.ndarray) -> np.ndarray:
    """int64 times as ``datetime64[ns]`` (naive; UTC when the file had time zones) or as integer steps."""
    times = np.asarray(times, dtype=np.int64)
    return times.astype("datetime64[ns]") if frame.is_datetime else times

"""The LightningDataModule: read a file, split it in time, fit clipping and scaling on the training span, serve windows.

Run: ``python -m lightning_lstm fit --data.path my.csv --data.time_column date --data.target_columns '[load]'``.

Messy timestamps: repeated ones are an error unless ``data.duplicate_timestamps`` merges them; irregular steps and
gaps are used as they are (with a warning) unless ``data.frequency`` resamples each series onto a grid, where gaps
become missing values that ``data.missing: drop`` keeps out of every window. Details in :mod:`.reading`.
"""

from __future__ import annotations

import logging
from itertools import pairwise
from typing import Literal

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from lightning_lstm.data.dataset import WindowDataset, collate_windows
from lightning_lstm.data.frame import SeriesFrame
from lightning_lstm.data.missing import finite_rows, handle_missing
from lightning_lstm.data.outliers import check_outlier_options
from lightning_lstm.data.reading import bundled_series_path, read_frame
from lightning_lstm.data.resumable import resumable_train_loader
from lightning_lstm.data.seasons import infer_season_length
from lightning_lstm.data.splits import (
    SplitBoundaries,
    rows_needed,
    span_rows,
    split_boundaries,
)
from lightning_lstm.data.state import data_state, restore_statistics
from lightning_lstm.data.statistics import FittedStatistics
from lightning_lstm.data.windows import WindowIndex, build_window_index, last_windows
from lightning_lstm.distributed import fit_on_rank_zero, window_sampler

log = logging.getLogger(__name__)


class TimeSeriesDataModule(pl.LightningDataModule):
    """Windows of one or many time series from a CSV, Parquet or ``.npy`` file, split in time order.

    Every statistic (clip bounds, scaling) is fitted on the training span only and travels in the checkpoint, so
    ``predict`` on a new file uses the training statistics.

    Args:
        path: CSV, Parquet or ``.npy`` file; empty uses the bundled weekly Mauna Loa CO2 series.
        time_column: column with timestamps (or integer steps); ``null`` uses the row order.
        target_columns: columns to forecast.
        feature_columns: input columns (past covariates); default: the targets.
        series_column: column naming each series of a long (panel) file.
        lookback: input steps per window.
        horizon: steps forecast per window (direct multi-step).
        stride: steps between consecutive training windows.
        val_fraction: share of the timeline for validation (ignored when ``val_start`` is set); 0 for none.
        test_fraction: share of the timeline at the end for testing (ignored when ``test_start`` is set).
        val_start: first timestamp of the validation span.
        test_start: first timestamp of the test span.
        scaler: ``standard``, ``minmax``, ``robust`` or ``none``, per column and series.
        outliers: clip outliers to bounds from the training span: ``none``, ``quantile``, ``iqr``, ``mad``, ``zscore``.
        outlier_quantiles: ``[low, high]`` quantiles for ``outliers: quantile``.
        outlier_k: width for ``iqr`` (default 3), ``mad`` (5) and ``zscore`` (5).
        clip_eval_inputs: clip validation/test/predict inputs too, as the model saw in training.
        clip_eval_targets: clip validation/test targets too (off: scores use the real values).
        missing: NaN/inf handling: ``error``, ``ffill``, ``interpolate``, or ``drop`` (skip windows that touch one).
        duplicate_timestamps: rows sharing a timestamp: ``error``, or merge them with ``first``, ``last``, ``mean``.
        frequency: resample onto this pandas offset alias (``5min``) first; gaps become missing values.
        season_length: steps per season for the seasonal-naive baseline; default inferred from the time step, 0 off.
        window_norm: ``last`` feeds each window relative to its last input value (and forecasts relative to it),
            so trending series never leave the training range; ``none`` feeds the scaled values.
        batch_size: windows per batch.
        num_workers: DataLoader worker processes.
        shuffle: shuffle training windows each epoch.
        drop_last: drop the last, smaller training batch of each epoch.
        pin_memory: pin batches for faster host-to-GPU copies; default: when CUDA is available.
        predict_mode: ``forecast`` the steps after each series' end, or ``backtest`` every window of ``predict_split``.
        predict_split: span scored by ``backtest``: ``val``, ``test`` or ``all``.
    """

    def __init__(
        self,
        path: str | None = None,
        time_column: str | None = "date",
        target_columns: list[str] = ["co2"],  # noqa: B006 - jsonargparse needs a literal default
        feature_columns: list[str] | None = None,
        series_column: str | None = None,
        lookback: int = 52,
        horizon: int = 4,
        stride: int = 1,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        val_start: str | None = None,
        test_start: str | None = None,
        scaler: Literal["standard", "minmax", "robust", "none"] = "standard",
        outliers: Literal["none", "quantile", "iqr", "mad", "zscore"] = "none",
        outlier_quantiles: tuple[float, float] = (0.005, 0.995),
        outlier_k: float | None = None,
        clip_eval_inputs: bool = True,
        clip_eval_targets: bool = False,
        missing: Literal["error", "ffill", "interpolate", "drop"] = "interpolate",
        duplicate_timestamps: Literal["error", "first", "last", "mean"] = "error",
        frequency: str | None = None,
        season_length: int | None = None,
        window_norm: Literal["none", "last"] = "none",
        batch_size: int = 64,
        num_workers: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
        pin_memory: bool | None = None,
        predict_mode: Literal["forecast", "backtest"] = "forecast",
        predict_split: Literal["val", "test", "all"] = "test",
    ) -> None:
        super().__init__()
        sizes = (("lookback", lookback), ("horizon", horizon), ("stride", stride), ("batch_size", batch_size))
        for key, value in sizes:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"data.{key} must be an integer >= 1, got {value!r}")
        if num_workers < 0:
            raise ValueError(f"data.num_workers must be >= 0, got {num_workers}")
        if not target_columns:
            raise ValueError("data.target_columns must name at least one column")
        for key, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 <= fraction < 1.0:
                raise ValueError(f"data.{key} must be in [0, 1), got {fraction}")
        if test_start is None and test_fraction == 0:
            raise ValueError("data.test_fraction is 0 and data.test_start is empty: give the test span a share")
        if val_start is None and test_start is None and val_fraction + test_fraction >= 1.0:
            raise ValueError(
                f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction} leaves nothing for training"
            )
        if season_length is not None and season_length < 0:
            raise ValueError(f"data.season_length must be >= 0, got {season_length}")
        check_outlier_options(outliers, tuple(outlier_quantiles), outlier_k)
        self.save_hyperparameters()
        self.path = path or str(bundled_series_path())
        self.target_columns = list(target_columns)
        self.feature_columns = list(feature_columns) if feature_columns else list(target_columns)
        self.columns = list(dict.fromkeys(self.target_columns + self.feature_columns))
        self.frame: SeriesFrame | None = None
        self.bounds: SplitBoundaries | None = None
        self.stats: FittedStatistics | None = None
        self.finite: np.ndarray | None = None
        self.missing_counts: dict[str, int] = {}
        self.restored = False  # statistics came from load_state_dict: setup never refits them

    # Sizes the model needs, known from the config alone (no setup()): LightningCLI links them to the model.
    @property
    def num_features(self) -> int:
        return len(self.feature_columns)

    @property
    def num_targets(self) -> int:
        return len(self.target_columns)

    @property
    def has_validation(self) -> bool:
        return self.hparams.val_fraction > 0 or self.hparams.val_start is not None

    def setup(self, stage: str) -> None:
        hp = self.hparams
        if self.frame is None:
            self.frame = read_frame(
                self.path, self.columns, hp.time_column, hp.series_column, hp.duplicate_timestamps, hp.frequency
            )
            self.missing_counts = handle_missing(self.frame, hp.missing)
            self.finite = finite_rows(self.frame.values) if hp.missing == "drop" else None
        if stage == "predict" and hp.predict_mode == "forecast":
            return  # statistics come from the checkpoint; no split is needed to forecast past the end
        self.bounds = split_boundaries(self.frame, hp.val_fraction, hp.test_fraction, hp.val_start, hp.test_start)
        self._check_split_sizes()
        if stage != "predict" and not self.restored:
            self.stats = fit_on_rank_zero(  # under DDP: fitted on rank zero, sent to all ranks
                lambda: FittedStatistics.fit(
                    self.frame, span_rows(self.frame, self.bounds, "train"), hp.scaler, hp.outliers,
                    tuple(hp.outlier_quantiles), hp.outlier_k,
                )
            )
            self._log_summary()

    def _check_split_sizes(self) -> None:
        """Every split needs a window; the message gives the series' length and the length the splits need."""
        hp, frame = self.hparams, self.frame
        need = hp.lookback + hp.horizon
        splits = ["train", "val", "test"] if self.has_validation else ["train", "test"]
        for split in splits:
            if len(self.window_index(split)) > 0:
                continue
            rows = [b - a for a, b in span_rows(frame, self.bounds, split)]
            longest = int(np.diff(frame.offsets).max())
            inside = "" if split == "train" else f" (its {hp.horizon} target rows inside the split)"
            series_needs = rows_needed(
                hp.lookback, hp.horizon, hp.val_fraction, hp.test_fraction, hp.val_start, hp.test_start
            )
            raise ValueError(
                f"{frame.source}: the {split} split has no window: the series has {longest} rows and its {split} "
                f"split {max(rows)}, but a window needs lookback + horizon = {hp.lookback} + {hp.horizon} = {need} "
                f"rows{inside}, so a series needs at least {series_needs} rows with these splits. Lower "
                "data.lookback / data.horizon, move the splits (data.val_fraction / data.test_fraction, "
                "data.val_start / data.test_start), or use a longer series."
            )

    def _log_summary(self) -> None:
        frame = self.frame
        indexes = {split: self.window_index(split) for split in ("train", "val", "test")}
        sizes = {split: len(index) for split, index in indexes.items()}
        skipped = ""
        if self.finite is not None:  # missing: drop
            dropped = {split: len(self.window_index(split, skip_missing=False)) - sizes[split] for split in sizes}
            skipped = f" (skipped for touching a missing value: {dropped})"
        log.info(
            "%s: %d rows in %d series; windows %s%s; missing values per column %s (%s); clipped per column on the "
            "training span %s", frame.source, frame.values.shape[0], frame.num_series, sizes, skipped,
            self.missing_counts, self.hparams.missing, self.stats.clipped,
        )
        unused = sorted(set(range(frame.num_series)) - set(indexes["train"].series.tolist()))
        if unused:
            log.warning(
                "%s: %d series have no training window (too short or gaps): %s", frame.source, len(unused),
                [frame.series_names[s] for s in unused[:10]],
            )

    def window_index(self, split: str, skip_missing: bool = True) -> WindowIndex:
        """Window positions of ``split`` (``train``, ``val``, ``test``, ``all`` or ``forecast``).

        With ``missing: drop`` windows touching a missing value are left out, unless ``skip_missing`` is False.
        """
        hp, frame = self.hparams, self.frame
        finite = self.finite if skip_missing else None
        if split == "forecast":
            return last_windows(frame.offsets, hp.lookback, finite)
        if split == "all":
            spans = [(int(a), int(b)) for a, b in pairwise(frame.offsets)]
        else:
            spans = span_rows(frame, self.bounds, split)
        stride = hp.stride if split == "train" else 1
        return build_window_index(spans, frame.offsets[:-1], hp.lookback, hp.horizon, stride, finite)

    def dataset(self, split: str) -> WindowDataset:
        """The windows of ``split`` with the fitted (or checkpoint-restored) statistics."""
        if self.stats is None:
            raise RuntimeError(
                "no fitted statistics: predict needs --ckpt_path with a checkpoint written by fit (the scaling and "
                "clip bounds of the training span are stored there)"
            )
        hp, frame = self.hparams, self.frame
        stats = self.stats.for_series(frame.series_names, frame.source)
        is_train = split == "train"
        season = hp.season_length if hp.season_length is not None else infer_season_length(frame)
        return WindowDataset(
            frame.values, self.window_index(split), stats,
            feature_idx=frame.column_index(self.feature_columns),
            target_idx=frame.column_index(self.target_columns),
            lookback=hp.lookback, horizon=hp.horizon, series_starts=frame.offsets[:-1],
            clip_inputs=is_train or hp.clip_eval_inputs, clip_targets=is_train or hp.clip_eval_targets,
            with_targets=split != "forecast", season_length=season, window_norm=hp.window_norm,
        )

    def _loader(self, split: str, train: bool = False, predict: bool = False) -> DataLoader:
        hp = self.hparams
        pin = torch.cuda.is_available() if hp.pin_memory is None else hp.pin_memory
        dataset = self.dataset(split)
        # Under DDP: this rank's share of the windows (see lightning_lstm/distributed.py); None on one process.
        mode = "train" if train else "predict" if predict else "eval"
        sampler = window_sampler(dataset, self.trainer, mode, hp.shuffle, hp.drop_last, split)
        options = dict(
            batch_size=hp.batch_size, drop_last=train and hp.drop_last, num_workers=hp.num_workers,
            collate_fn=collate_windows, pin_memory=pin, persistent_workers=hp.num_workers > 0,
        )
        if sampler is None and train:  # one process: a mid-epoch resume continues exactly (see .resumable)
            return resumable_train_loader(dataset, self.trainer, hp.shuffle, **options)
        return DataLoader(dataset, sampler=sampler, **options)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val") if self.has_validation else []

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        hp = self.hparams
        return self._loader("forecast" if hp.predict_mode == "forecast" else hp.predict_split, predict=True)

    def describe_windows(self, window_ids: np.ndarray, forecast: bool) -> pd.DataFrame:
        """Series name and timestamps of each window: one row per window (input start, first and last target)."""
        return self.frame.describe_windows(window_ids, self.hparams.lookback, self.hparams.horizon, forecast)

    def target_times(self, window_ids: np.ndarray, forecast: bool) -> np.ndarray:
        """``(B, H)`` int64 timestamps of each window's target steps (future ones from the series' time step)."""
        return self.frame.target_times(window_ids, self.hparams.lookback, self.hparams.horizon, forecast)

    def _settings(self) -> dict[str, object]:
        hp = self.hparams
        return {
            "feature_columns": list(self.feature_columns), "target_columns": list(self.target_columns),
            "lookback": int(hp.lookback), "horizon": int(hp.horizon), "scaler": str(hp.scaler),
            "outliers": str(hp.outliers), "window_norm": str(hp.window_norm),
        }

    def state_dict(self) -> dict:
        """The fitted statistics and the settings they belong to, as plain tensors and strings (see :mod:`.state`)."""
        return {} if self.stats is None else data_state(self.stats, self.frame, self._settings())

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the training statistics; a checkpoint of another column set, window or format is an error."""
        if not state_dict:
            return
        self.stats, self.restored = restore_statistics(state_dict, self._settings(), self.columns), True
        if self.frame is not None and self.frame.time_step is None and state_dict["time_step"] > 0:
            self.frame.time_step = state_dict["time_step"]
